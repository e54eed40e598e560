"""A ddtrace experiment over a dataset uploaded from a CSV file (ddtrace's bulk upload):
``python ddtrace_csv.py CSV_PATH``. Prints the run's outputs as JSON."""

from __future__ import annotations

import json
import sys

from ddtrace.llmobs import LLMObs

LLMObs.enable(ml_app="translator", project_name="csv-project")
dataset = LLMObs.create_dataset_from_csv(
    sys.argv[1], "words", input_data_columns=["word"], expected_output_columns=["upper"],
    metadata_columns=["lang"])


def shout(input_data, config):
    return {"upper": input_data["word"].upper()}


def same(input_data, output_data, expected_output):
    return output_data == expected_output


result = LLMObs.experiment("shout", shout, dataset, [same]).run()
print(json.dumps([row["output"] for row in result["rows"]]))
