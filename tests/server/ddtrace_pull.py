"""Reads back through ddtrace itself: ``python ddtrace_pull.py EXPERIMENT_ID`` pulls the
dataset and the experiment ddtrace_app.py stored, lists the project's experiments and
re-scores the pulled outputs with another evaluator (a new, linked experiment); prints
what ddtrace made of them as JSON."""

from __future__ import annotations

import json
import sys

from ddtrace.llmobs import LLMObs

LLMObs.enable(ml_app="calculator", project_name="calc-project")
dataset = LLMObs.pull_dataset("arithmetic")
pulled = LLMObs.pull_experiment(sys.argv[1])
listed = LLMObs.list_experiments()


def close_enough(input_data, output_data, expected_output):
    return abs(output_data - expected_output) <= 1


rerun = pulled.rerun_evaluators([close_enough])
print(json.dumps({
    "records": [{"input": r["input_data"], "expected_output": r["expected_output"],
                 "id": r["record_id"]} for r in dataset],
    "version": dataset.version,
    "rows": [{"output": row["output"], "record_id": row["record_id"],
              "evaluations": {k: v["value"] for k, v in row["evaluations"].items()}}
             for row in pulled.result["rows"]],
    "summary": {k: v["value"] for k, v in pulled.result["summary_evaluations"].items()},
    "rerun": {"id": rerun._id, "close_enough": [r["evaluations"]["close_enough"]["value"]
                                                for r in rerun.result["rows"]]},
    "listed": [{"id": e["id"], "status": e["status"], "name": e["name"]} for e in listed],
}))
