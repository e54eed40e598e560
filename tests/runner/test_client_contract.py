"""The client cannot drift from the server: every call it builds matches /openapi.json.

Each request the client makes (method, path, query parameters, JSON body) is checked
against the server's published contract: the path and method exist, every query
parameter is declared, and the body validates against the declared request schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from otel_experiments.client import _calls as calls
from otel_experiments.client._base import Call
from otel_experiments.server import ServerSettings, create_app

API = "/api/v2/llm-obs/v1"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("contract") / "c.db"
    return create_app(ServerSettings(database_url=f"sqlite:///{db}")).openapi()


def _operation(spec: dict[str, Any], call: Call[Any]) -> dict[str, Any]:
    path = (API + call.path.split("?")[0]).split("/")
    for template, item in spec["paths"].items():
        parts = template.split("/")
        if len(parts) == len(path) and all(
                t == p or (t.startswith("{") and t.endswith("}") and p) for t, p in zip(parts, path, strict=True)):
            operation = item.get(call.method.lower())
            assert operation is not None, f"{call.method} {template} is not published"
            return operation  # type: ignore[no-any-return]
    raise AssertionError(f"{call.method} {call.path}: no published path")


def _check(spec: dict[str, Any], call: Call[Any]) -> None:
    operation = _operation(spec, call)
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert set(call.params) <= declared, (call.method, call.path, set(call.params) - declared)
    if call.json is not None:
        content = operation["requestBody"]["content"]
        media = content.get("application/vnd.api+json") or content["application/json"]
        schema = {**media["schema"], "components": spec["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(call.json))
        assert not errors, (call.method, call.path, [e.message for e in errors[:3]])


def _every_call() -> list[Call[Any]]:
    exp = {"name": "n", "feature_slug": "f", "description": None, "project_id": None,
           "dataset_id": None, "dataset_version": None, "status": None, "config": {"m": 1},
           "metadata": {"v": 2}}
    attrs = calls.experiment_attrs(**exp)
    filters = {"user_id": "u-1", "status": "ok"}
    out: list[Call[Any]] = [
        calls.create_project("proj", "d"),
        calls.list_projects(10),
        calls.retrieve_project("p-1"),
        calls.create_dataset("ds", "p-1", "d", {"source": "t"}),
        calls.list_datasets("p-1", 10),
        calls.retrieve_dataset("d-1"),
        *calls.append_records("d-1", [{"input": {"q": 1}, "expected_output": "a",
                                       "metadata": {"k": 1}}]),
        calls.list_records("d-1", 1, 10),
        calls.update_record("d-1", "r-1", {"expected_output": "b"}),
        calls.delete_record("d-1", "r-1"),
        calls.create_experiment(attrs, calls.new_experiment_id()),
        calls.list_experiments({"project_id": "p-1", "status": "RUNNING"}, 10),
        calls.list_experiments({}, 10, {"config.model": "gpt-4o", "git.dirty": False}),
        calls.records_from_spans("d-1", calls.from_spans_selection(
            experiment_id="e-1", feature_slug=None, metric="exact_match", equals=False,
            minimum=None, maximum=None, span_name="task", status="ok", start_after=0,
            start_before=10**18, roots_only=True, expected_output="output", limit=10)),
        calls.records_from_spans("d-1", calls.from_spans_selection(
            experiment_id=None, feature_slug="slug", metric="score", equals=None,
            minimum=0.5, maximum=1.0, span_name=None, status=None, start_after=None,
            start_before=None, roots_only=False, expected_output="none", limit=None)),
        calls.retrieve_experiment("e-1"),
        calls.update_experiment("e-1", {"status": "COMPLETED", "metadata": {"v": 3}}),
        calls.delete_experiment("e-1"),
        calls.list_events("e-1", filters, 10),
        calls.list_experiment_records("e-1", filters, 10),
        calls.summary("e-1"),
        calls.compare_experiments("e-1", "e-2", 0.9),
    ]
    return out


def test_every_client_call_is_in_the_published_contract(spec: dict[str, Any]) -> None:
    built = _every_call()
    for call in built:
        _check(spec, call)
    # every function of the client that builds a call is covered above
    makers = {name for name, fn in vars(calls).items()
              if callable(fn) and not name.startswith("_")
              and getattr(fn, "__module__", "") == calls.__name__
              and "Call" in str(getattr(fn, "__annotations__", {}).get("return", ""))}
    assert makers <= {"create_project", "list_projects", "retrieve_project", "create_dataset",
                      "list_datasets", "retrieve_dataset", "append_records", "list_records",
                      "update_record", "delete_record", "create_experiment",
                      "list_experiments", "retrieve_experiment", "update_experiment",
                      "delete_experiment", "list_events", "list_experiment_records",
                      "summary", "compare_experiments", "records_from_spans"}, makers


def test_the_check_catches_drift(spec: dict[str, Any]) -> None:
    """Not vacuous: an undeclared parameter, an unknown path, a bad body all fail."""
    good = calls.list_events("e-1", {"user_id": "u"}, 10)
    with pytest.raises(AssertionError):
        _check(spec, good.with_params(**{"filter[usr]": "u"}))
    with pytest.raises(AssertionError):
        _check(spec, Call("GET", "/experiments/e-1/nothing", lambda d: d))
    with pytest.raises(AssertionError):
        _check(spec, Call("POST", "/projects", lambda d: d, json={"data": []}))
    assert Path(__file__).exists()
