"""A ddtrace LLM Observability experiment, written as its documentation shows.

Nothing in it knows about this package: the test runs it in a subprocess whose only
change is the environment (``DD_LLMOBS_OVERRIDE_ORIGIN`` and the variables keeping
ddtrace offline). ``python ddtrace_app.py NAME [broken]``: ``broken`` makes the task fail
on one record. Prints the run's rows as JSON.
"""

from __future__ import annotations

import json
import sys

from ddtrace.llmobs import LLMObs

NAME = sys.argv[1]
BROKEN = sys.argv[2:] == ["broken"]

LLMObs.enable(ml_app="calculator", project_name="calc-project")

dataset = LLMObs.create_dataset(
    "arithmetic",
    description="sums",
    records=[
        {"input_data": {"a": 2, "b": 2}, "expected_output": 4, "metadata": {"level": "easy"}},
        {"input_data": {"a": 3, "b": 3}, "expected_output": 6, "tags": ["level:easy"]},
        {"input_data": {"a": 10, "b": 5}, "expected_output": 16},
    ],
)


def add(input_data, config):
    if config["broken"] and input_data["a"] == 3:
        raise ValueError("cannot add 3")
    return input_data["a"] + input_data["b"]


def exact_match(input_data, output_data, expected_output):
    return output_data == expected_output


def distance(input_data, output_data, expected_output):
    return abs(expected_output - (output_data or 0))


def parity(input_data, output_data, expected_output):
    return "even" if (output_data or 0) % 2 == 0 else "odd"


def report(input_data, output_data, expected_output):
    return {"got": output_data, "want": expected_output}


def accuracy(inputs, outputs, expected_outputs, evaluators_results):
    matches = evaluators_results["exact_match"]
    return sum(1 for m in matches if m) / len(matches)


def worst(inputs, outputs, expected_outputs, evaluators_results):
    return max(evaluators_results["distance"])


experiment = LLMObs.experiment(
    NAME, add, dataset, [exact_match, distance, parity, report],
    summary_evaluators=[accuracy, worst], config={"broken": BROKEN}, tags={"team": "math"},
)
result = experiment.run()
LLMObs.flush()
print(json.dumps([{"output": row["output"], "error": row["error"]["message"]}
                  for row in result["rows"]]))
