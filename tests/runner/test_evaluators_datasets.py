"""Evaluators (calling convention, built-ins, summaries) and dataset loading. No server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_experiments.runner import (
    DatasetError,
    Metric,
    accuracy,
    contains,
    error_rate,
    exact_match,
    exact_match_ignoring,
    json_field_match,
    load_dataset,
    mean,
    numeric_match,
    pass_rate,
    regex,
    string_similarity,
)
from otel_experiments.runner.evaluators import as_metric, record_evaluator, summary_evaluator


def test_evaluators_get_only_the_arguments_they_declare() -> None:
    values = {"input": "i", "output": "o", "expected_output": "e", "metadata": {"m": 1}}
    assert record_evaluator(lambda output: output).kwargs(values) == {"output": "o"}
    assert record_evaluator(lambda metadata, input: 0).kwargs(values) == {
        "metadata": {"m": 1}, "input": "i"}
    assert record_evaluator(lambda **kw: 0).kwargs(values) == values
    with pytest.raises(TypeError, match="takes \\['score'\\]"):
        record_evaluator(lambda output, score: 0)
    summary = summary_evaluator(lambda outputs, evaluators_results, input: 0)
    assert summary.kwargs({"outputs": [1], "evaluations": {"a": [1]}, "inputs": [0]}) == {
        "outputs": [1], "evaluators_results": {"a": [1]}, "input": [0]}


def test_return_values_become_metrics() -> None:
    assert as_metric("x", True) == Metric(True, label="x")
    assert as_metric("x", None) is None
    m = as_metric("x", Metric(0.5, reasoning="why", metadata={"k": 1}))
    assert m is not None and m.label == "x" and m.metric_metadata() == {"k": 1, "reasoning": "why"}
    with pytest.raises(ValueError):
        as_metric("x", float("nan"))
    with pytest.raises(TypeError, match="returned dict"):
        as_metric("x", {"score": 1})


def test_builtin_record_evaluators() -> None:
    assert exact_match("a", "a") and not exact_match("a", "A")
    assert exact_match_ignoring()(" Paris ", "paris")
    tol = numeric_match(0.1)
    assert tol("1.05", 1) and not tol(1.2, 1) and not tol("x", 1) and not tol(True, 1)
    assert numeric_match(0.1, relative=True)(108, 100)
    total = json_field_match("totals.votes", tolerance=1)
    assert total.__name__ == "totals.votes_match"
    assert total('{"totals": {"votes": 1250}}', {"totals": {"votes": 1251}})
    assert not total({"totals": {}}, {"totals": {"votes": 1}})
    assert json_field_match("items.1")({"items": [1, 2]}, {"items": [0, 2]})
    assert contains()("The answer is PARIS.", "paris")
    assert contains()("red and blue", ["red", "blue"]) and not contains()("red", ["red", "x"])
    assert regex(r"^\d{3}$")("123") and not regex(r"^\d{3}$")("1234")
    sim = string_similarity()
    assert sim("kitten", "kitten") == 1.0 and 0.5 < sim("kitten", "sitting") < 1.0
    assert sim.__name__ == "string_similarity"


def test_builtin_summary_evaluators() -> None:
    evaluations = {"exact_match": [True, False, None, True], "score": [1.0, 0.5, None, 0.0]}
    outputs = ["a", "b", None, "d"]
    assert accuracy()(evaluations=evaluations, outputs=outputs) == 0.5  # the failure is wrong
    assert mean("score")(evaluations=evaluations) == 0.5
    assert pass_rate("score", 0.5)(evaluations=evaluations) == 2 / 3
    assert pass_rate("exact_match")(evaluations=evaluations) == 2 / 3
    assert error_rate([None, {"type": "E"}, None, None]) == 0.25
    assert accuracy()(evaluations={}, outputs=[]) is None


def test_datasets_from_lists_jsonl_csv_json(tmp_path: Path) -> None:
    inline = load_dataset([{"input": 1, "expected_output": 2}, {"input": 1, "expected_output": 2},
                           {"id": "mine", "input": 3, "metadata": {"k": "v"}},
                           {"question": "q", "expected": "a"}])
    ids = [r.id for r in inline.records]
    assert ids[0].startswith("rec-") and ids[1] == f"{ids[0]}-2" and ids[2] == "mine"
    assert inline.records[3].input == {"question": "q"}
    assert inline.records[3].expected_output == "a"
    again = load_dataset([{"input": 1, "expected_output": 2}])
    assert again.records[0].id == ids[0]  # content ids are stable across runs

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"input": {"q": 1}, "expected_output": [1]}\n\n{"input": "x"}\n')
    loaded = load_dataset(jsonl)
    assert [r.input for r in loaded.records] == [{"q": 1}, "x"] and loaded.source == str(jsonl)

    csv_path = tmp_path / "d.csv"
    csv_path.write_text('question,expected_output,metadata\nwhat?,"{""a"": 1}","{""k"": 2}"\n'
                        "why?,plain,\n")
    rows = load_dataset(csv_path).records
    assert rows[0].input == {"question": "what?"} and rows[0].expected_output == {"a": 1}
    assert rows[0].metadata == {"k": 2} and rows[1].expected_output == "plain"

    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps({"records": [{"input": 5}]}))
    assert load_dataset(as_json).records[0].input == 5

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": 1}\nnot json\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: not JSON"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match="unknown dataset format"):
        (tmp_path / "d.txt").write_text("x")
        load_dataset(tmp_path / "d.txt")
    with pytest.raises(DatasetError, match="metadata must be an object"):
        load_dataset([{"input": 1, "metadata": [1]}])


def test_progress_bar_on_and_off(capsys: pytest.CaptureFixture[str]) -> None:
    from otel_experiments.runner.progress import Progress

    with Progress(3, "run", enabled=True) as bar:
        assert bar._bar is not None  # rich is installed with the [runner] extra
        for failed in (False, True, False):
            bar.advance(failed=failed)
    assert bar.failed == 1
    with Progress(3, "run", enabled=False) as quiet:
        quiet.advance()
    assert quiet._bar is None and capsys.readouterr().out == ""


def test_delivery_line_never_hides_a_loss() -> None:
    from otel_experiments.runner.tracing import delivery_is_clean, delivery_line

    clean = {"exporting": True, "flushed": True, "delivered": 12, "spooled": 0, "dropped": 0,
             "retried": 1, "replayed": 0, "dropped_by_reason": {}, "last_error": None}
    assert delivery_line(clean) == "spans: 12 delivered, 0 spooled (sent later), 0 dropped"
    assert delivery_is_clean(clean)
    lossy = {**clean, "delivered": 10, "dropped": 2, "dropped_by_reason": {"rejected": 2},
             "last_error": "HTTP 400"}
    assert delivery_line(lossy) == ("spans: 10 delivered, 0 spooled (sent later), 2 dropped "
                                    "(rejected: 2); last error: HTTP 400")
    assert not delivery_is_clean(lossy)
    assert "flush did not finish" in delivery_line({"exporting": True, "flushed": False})
    assert "not exported" in delivery_line({"exporting": False, "flushed": True})
    assert not delivery_is_clean({"exporting": True, "flushed": True, "offline": True})
