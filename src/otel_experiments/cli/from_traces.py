"""``otel-experiments dataset-from-traces``: a dataset made (or extended) from stored spans."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from ._common import (
    WHERE_PREFIX,
    CliError,
    add_client_args,
    command,
    latest_matching,
    make_client,
)


def _metric_value(text: str) -> bool | float | str:
    """``true`` / ``false`` -> bool, a number -> float, anything else: the category."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _when(text: str | None, flag: str) -> int | None:
    """Epoch nanoseconds, or an ISO 8601 date-time (UTC when it names no zone)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{flag} {text!r}: expected an ISO 8601 date-time or epoch "
                       "nanoseconds", 2) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1_000_000_000)


def selection(args: argparse.Namespace) -> dict[str, Any]:
    """The ``datasets.records.from_spans`` keyword arguments the flags ask for."""
    if args.experiment is None and args.feature_slug is None:
        raise CliError("give --experiment and/or --feature-slug", 2)
    label, equals = None, None
    if args.metric is not None:
        label, sep, raw = args.metric.partition("=")
        equals = _metric_value(raw) if sep else None
        if not label:
            raise CliError(f"--metric {args.metric!r}: expected LABEL or LABEL=VALUE", 2)
    if label is None and (args.min is not None or args.max is not None):
        raise CliError("--min / --max need --metric LABEL", 2)
    return {"experiment_id": args.experiment, "feature_slug": args.feature_slug,
            "metric": label, "equals": equals, "min": args.min, "max": args.max,
            "span_name": args.span_name, "status": args.status,
            "start_after": _when(args.since, "--since"),
            "start_before": _when(args.until, "--until"), "roots_only": not args.all_spans,
            "expected_output": args.expected, "limit": args.limit}


def _from_traces(args: argparse.Namespace) -> int:
    kwargs = selection(args)
    with make_client(args) as client:
        if (args.experiment or "").startswith(WHERE_PREFIX):
            kwargs["experiment_id"] = latest_matching(client, args.experiment)
        if args.dataset is not None:
            dataset_id = args.dataset
        else:
            dataset_id = client.datasets.create(
                args.name, project_id=args.project_id,
                description="made from traces by otel-experiments dataset-from-traces").id
        try:
            done = client.datasets.records.from_spans(dataset_id, **kwargs)
        except ValueError as exc:
            raise CliError(str(exc), 2) from None
    print(f"dataset {dataset_id}: added {len(done.records)} records (version "
          f"{done.dataset_version}); {done.matched_spans} spans matched, {done.duplicates} "
          f"duplicate inputs (already there or repeated), {done.without_input} without an "
          "input")
    return 0


def add_parsers(sub: Any) -> None:
    cmd = command(sub, "dataset-from-traces", "make or extend a dataset from stored spans", [
        "otel-experiments dataset-from-traces --experiment exp-123 --metric exact_match=false "
        "--name regressions",
        "otel-experiments dataset-from-traces --feature-slug support-bot --dataset ds-42 \\",
        "    --metric judge --max 0.5 --since 2026-01-01T00:00:00Z",
    ], """
        Each matching span's input becomes a record, its output the expected output
        (--expected). An input already in the dataset is not added again; every record's
        metadata.source names the experiment, trace and span it came from.""")
    target = cmd.add_mutually_exclusive_group(required=True)
    target.add_argument("--dataset", metavar="ID", help="extend this dataset")
    target.add_argument("--name", help="create a new dataset with this name")
    cmd.add_argument("--project-id", help="project of the new dataset (with --name)")
    cmd.add_argument("--experiment", metavar="ID", help="spans of this experiment (or "
                     "where:PATH=VALUE[,...]: the newest whose run metadata matches)")
    cmd.add_argument("--feature-slug", metavar="SLUG",
                     help="spans of every experiment with this feature slug")
    cmd.add_argument("--metric", metavar="LABEL[=VALUE]",
                     help="only traces with this metric (equal to VALUE: true/false, a number "
                     "or a category)")
    cmd.add_argument("--min", type=float, metavar="X", help="... a score of at least X")
    cmd.add_argument("--max", type=float, metavar="X", help="... a score of at most X")
    cmd.add_argument("--span-name", metavar="NAME", help="only spans with this name")
    cmd.add_argument("--status", choices=("ok", "error"), help="only spans with this status")
    cmd.add_argument("--since", metavar="TIME", help="spans starting at or after TIME "
                     "(ISO 8601 or epoch ns)")
    cmd.add_argument("--until", metavar="TIME", help="spans starting before TIME")
    cmd.add_argument("--all-spans", action="store_true",
                     help="any span with an input, not only record (root) spans")
    cmd.add_argument("--expected", choices=("output", "expected_output", "none"),
                     default="output", help="where the expected output comes from")
    cmd.add_argument("--limit", type=int, metavar="N", help="at most N spans (server default "
                     "1000)")
    add_client_args(cmd)
    cmd.set_defaults(func=_from_traces)


__all__ = ["add_parsers", "selection"]
