"""Evaluators: plain callables scoring one record, summary evaluators scoring a run.

An evaluator is called with only the keyword arguments it declares out of ``input``,
``output``, ``expected_output`` and ``metadata`` (``def exact(output, expected_output)``
works), sync or async, and returns a number, a bool, a string, a :class:`Metric` or
``None`` (no metric). A summary evaluator is called the same way with lists
(``inputs``, ``outputs``, ``expected_outputs``, ``metadata``, ``errors``; singular names
work too) and ``evaluations``: ``{evaluator label: [value per record]}``.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MetricValue = float | int | bool | str


@dataclass(frozen=True)
class Metric:
    """An evaluation result with more than a value.

    ``type`` is ``"score"``, ``"boolean"`` or ``"categorical"`` (inferred from ``value``
    when ``None``); ``reasoning`` and ``metadata`` are stored with the metric; ``label``
    overrides the evaluator's name.
    """

    value: MetricValue
    type: str | None = None
    reasoning: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None

    def metric_metadata(self) -> dict[str, Any] | None:
        out = dict(self.metadata)
        if self.reasoning is not None:
            out["reasoning"] = self.reasoning
        return out or None


_RECORD_ARGS = ("input", "output", "expected_output", "metadata")
_SUMMARY_ALIASES = {"input": "inputs", "output": "outputs",
                    "expected_output": "expected_outputs", "error": "errors",
                    "evaluators_results": "evaluations", "metadatas": "metadata"}


def label_of(fn: Callable[..., Any]) -> str:
    label = getattr(fn, "label", None) or getattr(fn, "__name__", None)
    if not isinstance(label, str) or not label or label == "<lambda>":
        label = type(fn).__name__
    return label


class Evaluator:
    """An evaluator callable with its label and the arguments it takes (read once)."""

    __slots__ = ("aliases", "fn", "label", "params", "takes_all")

    def __init__(self, fn: Callable[..., Any], names: Sequence[str],
                 aliases: Mapping[str, str] | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"an evaluator must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.label = label_of(fn)
        self.aliases = dict(aliases or {})
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            self.params, self.takes_all = tuple(names), True
            return
        kinds = {p.kind for p in sig.parameters.values()}
        self.takes_all = inspect.Parameter.VAR_KEYWORD in kinds
        accepted = set(names) | set(self.aliases)
        self.params = tuple(n for n in sig.parameters if n in accepted)
        unknown = [p.name for p in sig.parameters.values()
                   if p.name not in accepted and p.default is inspect.Parameter.empty
                   and p.kind not in (inspect.Parameter.VAR_KEYWORD,
                                      inspect.Parameter.VAR_POSITIONAL)]
        if unknown:
            raise TypeError(f"evaluator {self.label!r} takes {unknown}; it may take only "
                            f"{', '.join(names)}")

    def kwargs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        if self.takes_all:
            return dict(values)
        return {n: values[self.aliases.get(n, n)] for n in self.params}


def record_evaluator(fn: Callable[..., Any]) -> Evaluator:
    return Evaluator(fn, _RECORD_ARGS)


def summary_evaluator(fn: Callable[..., Any]) -> Evaluator:
    return Evaluator(fn, ("inputs", "outputs", "expected_outputs", "metadata", "errors",
                          "evaluations"), _SUMMARY_ALIASES)


def as_metric(label: str, result: Any) -> Metric | None:
    """Normalise an evaluator's return value (``TypeError`` for anything else)."""
    if result is None:
        return None
    if isinstance(result, Metric):
        return result if result.label else Metric(result.value, result.type, result.reasoning,
                                                  result.metadata, label)
    if isinstance(result, (bool, int, float, str)):
        if isinstance(result, float) and not math.isfinite(result):
            raise ValueError(f"evaluator {label!r} returned {result!r}")
        return Metric(result, label=label)
    raise TypeError(f"evaluator {label!r} returned {type(result).__name__}; return a number, "
                    "bool, str, Metric or None")


# -- built-in record evaluators ---------------------------------------------------------

def _named(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    return fn


def _norm(value: Any, case_sensitive: bool, strip: bool) -> Any:
    if isinstance(value, str):
        if strip:
            value = value.strip()
        if not case_sensitive:
            value = value.casefold()
    return value


def exact_match(output: Any, expected_output: Any) -> bool:
    """``output == expected_output``."""
    return bool(output == expected_output)


def exact_match_ignoring(*, case: bool = True, whitespace: bool = True,
                         label: str = "exact_match") -> Callable[..., bool]:
    """Exact match ignoring letter case and/or surrounding whitespace of strings."""
    def evaluate(output: Any, expected_output: Any) -> bool:
        return bool(_norm(output, not case, whitespace)
                    == _norm(expected_output, not case, whitespace))
    return _named(label, evaluate)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def numeric_match(tolerance: float = 0.0, *, relative: bool = False,
                  label: str = "numeric_match") -> Callable[..., bool]:
    """Output and expected are numbers (or numeric strings) within ``tolerance``
    (absolute, or relative to the expected value)."""
    def evaluate(output: Any, expected_output: Any) -> bool:
        got, want = _number(output), _number(expected_output)
        if got is None or want is None:
            return False
        bound = tolerance * abs(want) if relative else tolerance
        return abs(got - want) <= bound
    return _named(label, evaluate)


def _field(value: Any, path: str) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return _MISSING
    for part in path.split(".") if path else []:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


_MISSING = object()


def json_field_match(path: str, tolerance: float | None = None, *,
                     label: str | None = None) -> Callable[..., bool]:
    """The field at dotted ``path`` (``"total"``, ``"items.0.price"``) of output and
    expected output (objects or JSON text) are equal, or numerically within ``tolerance``."""
    def evaluate(output: Any, expected_output: Any) -> bool:
        got, want = _field(output, path), _field(expected_output, path)
        if got is _MISSING or want is _MISSING:
            return False
        if tolerance is not None:
            a, b = _number(got), _number(want)
            if a is not None and b is not None:
                return abs(a - b) <= tolerance
        return bool(got == want)
    return _named(label or f"{path}_match", evaluate)


def contains(*, case_sensitive: bool = False, label: str = "contains") -> Callable[..., bool]:
    """The expected output (a string, or each of a list of strings) occurs in the output."""
    def evaluate(output: Any, expected_output: Any) -> bool:
        text = _norm(output if isinstance(output, str) else json.dumps(output, default=str),
                     case_sensitive, False)
        wanted = expected_output if isinstance(expected_output, list) else [expected_output]
        return all(isinstance(w, str) and _norm(w, case_sensitive, False) in text
                   for w in wanted)
    return _named(label, evaluate)


def regex(pattern: str, *, flags: int = 0, label: str = "regex") -> Callable[..., bool]:
    """The output (as text) matches ``pattern`` (``re.search``)."""
    compiled = re.compile(pattern, flags)

    def evaluate(output: Any) -> bool:
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        return compiled.search(text) is not None
    return _named(label, evaluate)


def string_similarity(*, case_sensitive: bool = False,
                      label: str = "string_similarity") -> Callable[..., float]:
    """Similarity ratio in [0, 1] of output and expected output as text (difflib)."""
    def evaluate(output: Any, expected_output: Any) -> float:
        a = _norm(output if isinstance(output, str) else json.dumps(output, default=str),
                  case_sensitive, True)
        b = _norm(expected_output if isinstance(expected_output, str)
                  else json.dumps(expected_output, default=str), case_sensitive, True)
        return round(difflib.SequenceMatcher(None, a, b).ratio(), 6)
    return _named(label, evaluate)


# -- built-in summary evaluators --------------------------------------------------------

def _numeric(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, str)]


def accuracy(of: str = "exact_match", *, label: str | None = None) -> Callable[..., float | None]:
    """Share of records whose ``of`` evaluation is true, over every record (a record
    whose task failed counts as wrong)."""
    def evaluate(evaluations: Mapping[str, Sequence[Any]], outputs: Sequence[Any]) -> float | None:
        values = evaluations.get(of, [])
        return sum(1 for v in values if v is True or v == 1) / len(outputs) if outputs else None
    return _named(label or "accuracy", evaluate)


def mean(of: str, *, label: str | None = None) -> Callable[..., float | None]:
    """Mean of the numeric (or boolean) ``of`` evaluations that exist."""
    def evaluate(evaluations: Mapping[str, Sequence[Any]]) -> float | None:
        values = _numeric([v for v in evaluations.get(of, []) if v is not None])
        return sum(values) / len(values) if values else None
    return _named(label or f"mean_{of}", evaluate)


def pass_rate(of: str, threshold: float = 0.5, *,
              label: str | None = None) -> Callable[..., float | None]:
    """Share of evaluated records whose ``of`` value is true or >= ``threshold``."""
    def evaluate(evaluations: Mapping[str, Sequence[Any]]) -> float | None:
        values = [v for v in evaluations.get(of, []) if v is not None]
        passed = sum(1 for v in values if v is True or (
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= threshold))
        return passed / len(values) if values else None
    return _named(label or f"pass_rate_{of}", evaluate)


def error_rate(errors: Sequence[Any]) -> float | None:
    """Share of records whose task raised or timed out."""
    return sum(1 for e in errors if e is not None) / len(errors) if errors else None


__all__ = [
    "Evaluator",
    "Metric",
    "MetricValue",
    "accuracy",
    "as_metric",
    "contains",
    "error_rate",
    "exact_match",
    "exact_match_ignoring",
    "json_field_match",
    "label_of",
    "mean",
    "numeric_match",
    "pass_rate",
    "record_evaluator",
    "regex",
    "string_similarity",
    "summary_evaluator",
]
