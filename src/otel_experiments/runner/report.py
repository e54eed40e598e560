"""Rendering gate verdicts and comparisons: a text table, Markdown, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from . import significance
from .compare import Comparison
from .gate import GateResult


def _fmt(value: float | None, label: str = "") -> str:
    if value is None:
        return "-"
    if label.startswith("latency"):
        return f"{value:.1f} ms"
    return f"{value:.4g}"


def _delta(value: float | None, label: str = "") -> str:
    if value is None:
        return "-"
    if label.startswith("latency"):
        return f"{value:+.1f} ms"
    return f"{value:+.4g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table (CI logs have no terminal)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers, widths, strict=True)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(f"{c!s:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_md_cell(str(c)) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _gate_rows(verdict: GateResult) -> list[list[str]]:
    return [["PASS" if c.passed else "FAIL", c.name, _fmt(c.actual), c.limit, c.detail]
            for c in verdict.checks]


def gate_text(verdict: GateResult) -> str:
    r = verdict.result
    head = (f"quality gate for {r.name} ({r.experiment_id}): {len(r.records)} records, "
            f"{r.summary.get('failed_count', 0)} failed")
    if verdict.baseline is not None:
        head += f"; baseline {verdict.baseline.name} ({verdict.baseline.experiment_id})"
    body = table(["", "check", "value", "limit", "detail"], _gate_rows(verdict)) \
        if verdict.checks else "(no checks given)"
    tail = "PASSED" if verdict.passed else f"FAILED: {len(verdict.failures)} of " \
        f"{len(verdict.checks)} checks"
    return f"{head}\n{body}\n{tail}"


def gate_markdown(verdict: GateResult) -> str:
    r = verdict.result
    icon = "✅" if verdict.passed else "❌"
    word = "passed" if verdict.passed else "failed"
    lines = [f"### {icon} Quality gate {word}: `{_md_cell(r.name)}`", "",
             f"{len(r.records)} records, {r.summary.get('failed_count', 0)} failed "
             f"(experiment `{r.experiment_id}`)"]
    if verdict.baseline is not None:
        lines[-1] += f"; baseline `{_md_cell(verdict.baseline.name)}`"
    rows = [[("✅" if c.passed else "❌"), c.name, _fmt(c.actual), c.limit, c.detail]
            for c in verdict.checks]
    lines += ["", markdown_table(["", "check", "value", "limit", "detail"], rows)]
    return "\n".join(lines) + "\n"


def gate_junit(verdict: GateResult) -> str:
    """JUnit XML: one test case per check (CI systems show failures by name)."""
    r = verdict.result
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=f"otel-experiments gate: {r.name}",
                          tests=str(len(verdict.checks)), failures=str(len(verdict.failures)),
                          errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="experiment_id", value=r.experiment_id)
    if verdict.baseline is not None:
        ET.SubElement(props, "property", name="baseline_id",
                      value=verdict.baseline.experiment_id)
    for check in verdict.checks:
        case = ET.SubElement(suite, "testcase", classname="otel_experiments.gate",
                             name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", type="QualityGate",
                                    message=f"{check.name}: got {_fmt(check.actual)}, "
                                    f"needs {check.limit}")
            failure.text = check.detail or None
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str,
                                                           ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _compare_rows(cmp: Comparison) -> list[list[str]]:
    names = {"A": cmp.a.name, "B": cmp.b.name, "tie": "tie", None: "-"}
    return [[m.label, _fmt(m.a, m.label), _fmt(m.b, m.label), _delta(m.delta, m.label),
             names[m.winner]] for m in cmp.metrics]


def compare_text(cmp: Comparison, max_changes: int = 20) -> str:
    a, b = cmp.a, cmp.b
    out = [f"A: {a.name} ({a.experiment_id})", f"B: {b.name} ({b.experiment_id})", "",
           table(["metric", "A", "B", "delta", "winner"], _compare_rows(cmp)), ""]
    winner = {"A": a.name, "B": b.name}.get(cmp.winner)
    out.append(f"winner: {winner}" if winner else "winner: tie")
    if cmp.significance:
        out += ["", f"B against A, {significance.title(cmp.significance)}:",
                table(significance.HEADERS, significance.rows(cmp.significance)), ""]
    out.append(f"{len(cmp.changes)} of {cmp.common_records} common records changed outcome "
               f"({len(cmp.regressions)} regressions)")
    if cmp.changes:
        rows = [[c.kind, c.record_id, c.what, _short(c.input, 40)]
                for c in cmp.changes[:max_changes]]
        out += ["", table(["change", "record", "what", "input"], rows)]
        if len(cmp.changes) > max_changes:
            out.append(f"... and {len(cmp.changes) - max_changes} more")
    return "\n".join(out)


def compare_markdown(cmp: Comparison, max_changes: int = 20) -> str:
    a, b = cmp.a, cmp.b
    winner = {"A": a.name, "B": b.name}.get(cmp.winner, "tie")
    lines = [f"### `{_md_cell(a.name)}` vs `{_md_cell(b.name)}`: winner **{_md_cell(winner)}**",
             "", markdown_table(["metric", "A", "B", "delta", "winner"], _compare_rows(cmp))]
    if cmp.significance:
        lines += ["", f"B against A, {significance.title(cmp.significance)}:", "",
                  markdown_table(significance.HEADERS, significance.rows(cmp.significance))]
    lines += ["", f"{len(cmp.changes)} of {cmp.common_records} common records changed "
             f"outcome ({len(cmp.regressions)} regressions)"]
    if cmp.changes:
        rows = [[c.kind, f"`{c.record_id}`", c.what, _short(c.input, 40)]
                for c in cmp.changes[:max_changes]]
        lines += ["", markdown_table(["change", "record", "what", "input"], rows)]
    return "\n".join(lines) + "\n"


__all__ = ["compare_markdown", "compare_text", "gate_junit", "gate_markdown", "gate_text",
           "markdown_table", "table"]
