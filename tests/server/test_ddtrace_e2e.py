"""The real ddtrace client (the ``dev`` extra) runs experiments against a real server.

``ddtrace_app.py`` is ddtrace's documented experiment code; it runs in a subprocess whose
only change is the environment. Everything is then read back through our own API.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import API

from server_process import ServerProcess

HERE = Path(__file__).parent
KEY = "dd-local-key"
_TIMEOUT = 240  # seconds: a ddtrace import is slow on a loaded machine


@pytest.fixture(scope="module")
def dd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("ddtrace") / "experiments.db"
    with ServerProcess(f"sqlite:///{db}", api_keys=[KEY]) as server:
        yield server


def ddtrace_env(server: ServerProcess, api_key: str = KEY) -> dict[str, str]:
    """The environment of an unchanged ddtrace program pointed at ``server``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL_"))}
    env.update({
        "DD_LLMOBS_OVERRIDE_ORIGIN": server.base_url,
        "DD_API_KEY": api_key,
        # offline, as the README says: no agent (LLM Observability agentless, straight to
        # the origin), no APM traces, no telemetry or remote configuration; and in case
        # anything is left over, it would go to a closed loopback port, never out
        "DD_LLMOBS_AGENTLESS_ENABLED": "true",
        "DD_TRACE_ENABLED": "false",
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
        "DD_DOGSTATSD_URL": "udp://127.0.0.1:9",
    })
    return env


def run_ddtrace(server: ServerProcess, script: str, *args: str,
                api_key: str = KEY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True,
                          text=True, env=ddtrace_env(server, api_key), timeout=_TIMEOUT,
                          cwd=HERE)


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def api(dd_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dd_server.base_url + API, timeout=30.0,
                      headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def get(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def project_id(api: httpx.Client) -> str:
    (project,) = [p for p in get(api, "/projects")["data"]
                  if p["attributes"]["name"] == "calc-project"]
    return str(project["id"])


def experiments_named(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    found = get(api, "/experiments", **{"filter[project_id]": project_id(api)})["data"]
    return [e for e in found if e["attributes"]["name"] == name]


def records_of(api: httpx.Client, experiment_id: str) -> list[dict[str, Any]]:
    rows = get(api, f"/experiments/{experiment_id}/records")["data"]
    return sorted((r["attributes"] for r in rows), key=lambda r: r["input"]["a"])


def metrics_by_label(record: dict[str, Any]) -> dict[str, Any]:
    return {m["label"]: m for m in record["metrics"]}


@pytest.fixture(scope="module")
def first_run(dd_server: ServerProcess, api: httpx.Client) -> dict[str, Any]:
    rows = ok_json(run_ddtrace(dd_server, "ddtrace_app.py", "calc-v1"))
    (experiment,) = experiments_named(api, "calc-v1")
    return {"rows": rows, "experiment": experiment}


def test_dataset_and_records_are_stored(api: httpx.Client, first_run: dict[str, Any]) -> None:
    datasets = get(api, "/datasets", **{"filter[project_id]": project_id(api)})["data"]
    (dataset,) = [d for d in datasets if d["attributes"]["name"] == "arithmetic"]
    assert dataset["attributes"]["description"] == "sums"
    assert dataset["attributes"]["current_version"] == 1
    records = get(api, f"/datasets/{dataset['id']}/records")["data"]
    got = sorted(((r["attributes"]["input"], r["attributes"]["expected_output"],
                   r["attributes"]["metadata"], r["attributes"]["tags"]) for r in records),
                 key=lambda t: t[0]["a"])
    assert got == [({"a": 2, "b": 2}, 4, {"level": "easy"}, []),
                   ({"a": 3, "b": 3}, 6, {}, ["level:easy"]),
                   ({"a": 10, "b": 5}, 16, {}, [])]
    assert first_run["experiment"]["attributes"]["dataset_id"] == dataset["id"]


def test_experiment_completed_with_one_task_span_per_record(
        api: httpx.Client, first_run: dict[str, Any]) -> None:
    experiment = first_run["experiment"]
    attrs = experiment["attributes"]
    assert attrs["status"] == "COMPLETED"
    assert attrs["config"] == {"broken": False}
    assert "team:math" in attrs["metadata"]["tags"]
    records = records_of(api, experiment["id"])
    assert [(r["input"], r["output"], r["expected_output"], r["status"]) for r in records] == [
        ({"a": 2, "b": 2}, 4, 4, "ok"), ({"a": 3, "b": 3}, 6, 6, "ok"),
        ({"a": 10, "b": 5}, 15, 16, "ok")]
    for record in records:  # joined to its dataset record
        assert record["name"] == "add"
        assert record["record"]["input"] == record["input"]
        assert record["record"]["expected_output"] == record["expected_output"]
        assert len(record["span_id"]) == 16 and len(record["trace_id"]) == 32
    assert records[0]["metadata"] == {"level": "easy"}


def test_each_evaluator_metric_per_record(api: httpx.Client, first_run: dict[str, Any]) -> None:
    records = records_of(api, first_run["experiment"]["id"])
    values = [{label: (m["metric_type"], m["value"]) for label, m in
               metrics_by_label(r).items()} for r in records]
    assert values == [
        {"exact_match": ("boolean", True), "distance": ("score", 0),
         "parity": ("categorical", "even"), "report": ("categorical", '{"got":4,"want":4}')},
        {"exact_match": ("boolean", True), "distance": ("score", 0),
         "parity": ("categorical", "even"), "report": ("categorical", '{"got":6,"want":6}')},
        {"exact_match": ("boolean", False), "distance": ("score", 1),
         "parity": ("categorical", "odd"), "report": ("categorical", '{"got":15,"want":16}')},
    ]
    report = metrics_by_label(records[2])["report"]  # ddtrace's json metric, kept whole
    assert report["metadata"]["_dd"]["json_value"] == {"got": 15, "want": 16}
    assert all(m["span_id"] == r["span_id"] for r in records for m in r["metrics"])
    summary = get(api, f"/experiments/{first_run['experiment']['id']}/summary")["data"]
    by_label = {m["label"]: m for m in summary["attributes"]["metrics"]}
    assert by_label["exact_match"]["value_counts"] == {"true": 2, "false": 1}
    assert by_label["distance"]["count"] == 3


def test_summary_metric_values(first_run: dict[str, Any]) -> None:
    metadata = first_run["experiment"]["attributes"]["metadata"]
    assert metadata["summary"]["evaluations"] == {"accuracy": pytest.approx(2 / 3), "worst": 1}


def test_a_failing_task_is_recorded_as_an_error(dd_server: ServerProcess,
                                                api: httpx.Client) -> None:
    rows = ok_json(run_ddtrace(dd_server, "ddtrace_app.py", "calc-broken", "broken"))
    assert sorted(r["error"] or "" for r in rows) == ["", "", "cannot add 3"]
    (experiment,) = experiments_named(api, "calc-broken")
    assert experiment["attributes"]["status"] == "FAILED"
    assert "cannot add 3" in experiment["attributes"]["metadata"]["_dd"]["error"]
    failed = [r for r in records_of(api, experiment["id"]) if r["status"] == "error"]
    assert [(r["input"], r["error"]["message"]) for r in failed] == [
        ({"a": 3, "b": 3}, "cannot add 3")]
    assert "ValueError" in failed[0]["error"]["type"]
    assert "Traceback" in failed[0]["error"]["stack"]
    errors = get(api, f"/experiments/{experiment['id']}/records", **{"filter[status]": "error"})
    assert len(errors["data"]) == 1


def test_a_rerun_does_not_duplicate_records(dd_server: ServerProcess, api: httpx.Client,
                                            first_run: dict[str, Any]) -> None:
    dataset_id = first_run["experiment"]["attributes"]["dataset_id"]
    before = get(api, f"/datasets/{dataset_id}")["data"]["attributes"]
    rows = ok_json(run_ddtrace(dd_server, "ddtrace_app.py", "calc-v1"))
    assert [r["output"] for r in rows] == [4, 6, 15]
    after = get(api, f"/datasets/{dataset_id}")["data"]["attributes"]
    assert (after["record_count"], after["current_version"]) == (3, before["current_version"])
    runs = experiments_named(api, "calc-v1")
    assert len(runs) == 2 and runs[0]["id"] != runs[1]["id"]
    records = records_of(api, runs[1]["id"])
    assert len(records) == 3  # one task span per record, each joined to the stored record
    stored = {r["id"] for r in get(api, f"/datasets/{dataset_id}/records")["data"]}
    assert {r["record"]["id"] for r in records} == stored


def test_ddtrace_reads_back_what_it_stored(dd_server: ServerProcess, api: httpx.Client,
                                           first_run: dict[str, Any]) -> None:
    pulled = ok_json(run_ddtrace(dd_server, "ddtrace_pull.py", first_run["experiment"]["id"]))
    assert sorted(r["expected_output"] for r in pulled["records"]) == [4, 6, 16]
    assert pulled["version"] == 1
    assert sorted(r["output"] for r in pulled["rows"]) == [4, 6, 15]
    assert {r["evaluations"]["exact_match"] for r in pulled["rows"]} == {True, False}
    assert {r["record_id"] for r in pulled["rows"]} == {r["id"] for r in pulled["records"]}
    assert pulled["summary"] == {"accuracy": pytest.approx(2 / 3), "worst": 1}
    listed = {e["id"]: e for e in pulled["listed"]}
    assert listed[first_run["experiment"]["id"]]["status"] == "completed"
    # rerun_evaluators: a new experiment, linked, its spans posted inside the events body
    rerun = get(api, f"/experiments/{pulled['rerun']['id']}")["data"]["attributes"]
    assert rerun["metadata"]["_dd"]["parent_experiment_id"] == first_run["experiment"]["id"]
    assert rerun["status"] == "COMPLETED"
    records = records_of(api, pulled["rerun"]["id"])
    assert [(r["output"], metrics_by_label(r)["close_enough"]["value"]) for r in records] == [
        (4, True), (6, True), (15, True)]
    assert all(r["record"] is not None for r in records)


def test_a_wrong_api_key_stores_nothing(dd_server: ServerProcess, api: httpx.Client) -> None:
    done = run_ddtrace(dd_server, "ddtrace_app.py", "calc-unauthorized", api_key="wrong")
    assert done.returncode != 0
    assert "401" in done.stderr
    assert experiments_named(api, "calc-unauthorized") == []


def test_the_readme_section_sets_what_the_test_sets(dd_server: ServerProcess) -> None:
    text = (HERE.parents[1] / "README.md").read_text()
    section = text[text.index("## Run your ddtrace experiments locally"):
                   text.index("## Data flow")]
    written = set(re.findall(r"\b(DD_[A-Z_]+)=", section))
    assert {"DD_LLMOBS_OVERRIDE_ORIGIN", "DD_API_KEY"} <= written
    guards = {"DD_TRACE_AGENT_URL", "DD_DOGSTATSD_URL"}  # the test's loopback-only safety net
    assert written == {k for k in ddtrace_env(dd_server) if k.startswith("DD_")} - guards


def test_a_dataset_uploaded_from_csv(dd_server: ServerProcess, api: httpx.Client,
                                     tmp_path: Path) -> None:
    csv_path = tmp_path / "words.csv"
    csv_path.write_text("word,upper,lang\nhello,HELLO,en\nhallo,HALLO,de\n")
    for _ in range(2):  # the second upload of the same file adds nothing
        outputs = ok_json(run_ddtrace(dd_server, "ddtrace_csv.py", str(csv_path)))
        assert outputs == [{"upper": "HELLO"}, {"upper": "HALLO"}]
    (project,) = [p for p in get(api, "/projects")["data"]
                  if p["attributes"]["name"] == "csv-project"]
    (dataset,) = get(api, "/datasets", **{"filter[project_id]": project["id"]})["data"]
    stored = get(api, f"/datasets/{dataset['id']}/records")["data"]
    assert sorted(((r["attributes"]["input"], r["attributes"]["expected_output"],
                    r["attributes"]["metadata"]) for r in stored), key=json.dumps) == [
        ({"word": "hallo"}, {"upper": "HALLO"}, {"lang": "de"}),
        ({"word": "hello"}, {"upper": "HELLO"}, {"lang": "en"})]
    runs = get(api, "/experiments", **{"filter[project_id]": project["id"]})["data"]
    assert [r["attributes"]["status"] for r in runs] == ["COMPLETED", "COMPLETED"]
    for run in runs:  # version 0 from ddtrace means the current one: records join
        records = records_of_any(api, run["id"])
        assert all(r["record"] is not None for r in records) and len(records) == 2
        assert all(metrics_by_label(r)["same"]["value"] is True for r in records)


def records_of_any(api: httpx.Client, experiment_id: str) -> list[dict[str, Any]]:
    return [r["attributes"] for r in get(api, f"/experiments/{experiment_id}/records")["data"]]


def test_our_client_and_gate_read_a_ddtrace_experiment(dd_server: ServerProcess,
                                                       first_run: dict[str, Any],
                                                       tmp_path: Path) -> None:
    from otel_experiments import ExperimentsClient
    from otel_experiments.runner.results import ExperimentResult

    with ExperimentsClient(endpoint=dd_server.base_url, api_key=KEY) as client:
        result = ExperimentResult.from_server(client, first_run["experiment"]["id"])
    assert result.status == "COMPLETED" and len(result.records) == 3
    assert result.summary["evaluations"] == {"accuracy": pytest.approx(2 / 3), "worst": 1}
    assert result.summary["metrics"]["exact_match"]["mean"] == pytest.approx(2 / 3)
    result.to_json(tmp_path / "dd.json")
    gate = subprocess.run([sys.executable, "-m", "otel_experiments.cli", "gate",
                           str(tmp_path / "dd.json"), "--min", "exact_match=0.9"],
                          capture_output=True, text=True, timeout=60)
    assert gate.returncode == 1, gate.stdout + gate.stderr  # 2/3 < 0.9: the gate fails


def test_the_web_ui_shows_a_ddtrace_experiment(dd_server: ServerProcess,
                                               first_run: dict[str, Any]) -> None:
    exp_id = first_run["experiment"]["id"]
    with httpx.Client(base_url=dd_server.base_url, timeout=30.0) as browser:
        login = browser.post("/ui/login", data={"api_key": KEY, "next": "/ui/"})
        assert login.status_code in (200, 303), login.text
        listing = browser.get("/ui/")
        assert listing.status_code == 200 and exp_id in listing.text
        detail = browser.get("/ui/experiment", params={"id": exp_id})
        assert detail.status_code == 200, detail.text
    for shown in ("calc-v1", "accuracy", "worst", "exact_match", "distance", "parity"):
        assert shown in detail.text, shown
