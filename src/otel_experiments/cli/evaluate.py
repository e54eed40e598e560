"""``otel-experiments run``, ``gate`` and ``compare``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._common import (
    CliError,
    add_client_args,
    command,
    load_object,
    load_result,
    make_client,
    write_text,
)
from ._costs import add_prices_arg, cost_check, load_price_table, priced, usage_rows

if TYPE_CHECKING:
    from ..client import ExperimentsClient

#: Built-in evaluators usable by name (``--evaluator exact_match``).
RECORD_BUILTINS = ("exact_match", "contains", "string_similarity", "exact_match_ignoring")
SUMMARY_BUILTINS = ("accuracy", "error_rate")


def _evaluator(spec: str, builtins: tuple[str, ...], flag: str) -> Callable[..., Any]:
    if ":" not in spec:
        if spec not in builtins:
            raise CliError(f"{flag} {spec!r}: not a built-in ({', '.join(builtins)}); "
                           "give MODULE:FUNCTION for your own", 2)
        from ..runner import evaluators

        obj = getattr(evaluators, spec)
        return obj if spec in ("exact_match", "error_rate") else obj()  # type: ignore[no-any-return]
    fn = load_object(spec, flag)
    if not callable(fn):
        raise CliError(f"{flag} {spec!r} is not callable", 2)
    return fn  # type: ignore[no-any-return]


def _config(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--config {item!r}: expected KEY=VALUE", 2)
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw  # a bare word: a string
    return out


def _run(args: argparse.Namespace) -> int:
    from ..runner import RunInterrupted, run_experiment
    from ..runner.datasets import DatasetError

    task = load_object(args.task, "task")
    if not callable(task):
        raise CliError(f"task {args.task!r} is not callable", 2)
    evaluators = [_evaluator(e, RECORD_BUILTINS, "--evaluator") for e in args.evaluator or []]
    summaries = [_evaluator(e, SUMMARY_BUILTINS, "--summary-evaluator")
                 for e in args.summary_evaluator or []]
    resume: bool | str | None = {"auto": None, "yes": True, "no": False}.get(args.resume,
                                                                             args.resume)
    name = args.name or args.task.rpartition(":")[2]
    with make_client(args) as client:
        try:
            result = run_experiment(
                name, args.dataset, task, evaluators, summaries,
                feature_slug=args.feature_slug, config=_config(args.config),
                project_id=args.project_id, client=client,
                max_concurrency=args.max_concurrency, task_timeout=args.task_timeout,
                evaluator_timeout=args.evaluator_timeout,
                rate_limit=args.rate_limit, resume=resume, quiet=args.quiet,
                repetitions=args.repetitions, prices=load_price_table(args.prices))
        except DatasetError as exc:
            raise CliError(str(exc)) from None
        except (TypeError, ValueError) as exc:  # a bad evaluator signature, bad bounds
            raise CliError(str(exc), 2) from None
        except RunInterrupted as stop:
            stop.result.to_json(args.output)
            print(f"partial results written to {args.output}", file=sys.stderr)
            return 130
    result.to_json(args.output)
    if not args.quiet:
        _print_metrics(result)
        print(f"results written to {args.output}")
    return 0


def _print_metrics(result: Any) -> None:
    from ..runner.intervals import spread_text
    from ..runner.report import table

    rows = [[label, f"{result.value(label):.4g}" if result.value(label) is not None else "-",
             spread_text(result.metric(label))] for label in result.labels()]
    rows.append(["error_rate", f"{result.summary.get('error_rate') or 0:.4g}", ""])
    rows.extend([*row, ""] for row in usage_rows(result))
    print(table(["metric", "value", "95% CI, pass@k, pass^k"], rows))


def _client_factory(args: argparse.Namespace) -> tuple[Callable[[], ExperimentsClient],
                                                        list[ExperimentsClient]]:
    made: list[ExperimentsClient] = []

    def get() -> ExperimentsClient:
        if not made:
            made.append(make_client(args))
        return made[0]

    return get, made


def _gate(args: argparse.Namespace) -> int:
    from ..runner.gate import GateError, gate, parse_bounds
    from ..runner.report import gate_junit, gate_markdown, gate_text

    if args.confidence is not None and not args.baseline:
        raise CliError("--confidence judges a run against a --baseline: give one", 2)
    get_client, made = _client_factory(args)
    try:
        result = load_result(args.results, args, get_client)
        baseline = load_result(args.baseline, args, get_client) if args.baseline else None
        priced(args, result, baseline)
        maximums = parse_bounds(args.max, "--max")
        if args.max_p95_ms is not None:
            maximums["latency_p95_ms"] = args.max_p95_ms
        verdict = gate(result, minimums=parse_bounds(args.min, "--min"),
                       maximums=maximums,
                       max_failures=args.max_failures, baseline=baseline,
                       tolerance=args.tolerance, confidence=args.confidence)
        if args.max_cost is not None:
            verdict.checks.append(cost_check(result, args.max_cost))
    except GateError as exc:
        raise CliError(str(exc), 2) from None
    finally:
        for c in made:
            c.close()
    if args.markdown is not None:
        write_text(args.markdown, gate_markdown(verdict))
    if args.markdown != "-":
        print(gate_text(verdict))
    if args.junit:
        write_text(args.junit, gate_junit(verdict))
    return 0 if verdict.passed else 1


def _compare(args: argparse.Namespace) -> int:
    from ..runner.compare import compare
    from ..runner.report import compare_markdown, compare_text

    get_client, made = _client_factory(args)
    try:
        a = load_result(args.a, args, get_client)
        b = load_result(args.b, args, get_client)
        priced(args, a, b)
    finally:
        for c in made:
            c.close()
    cmp = compare(a, b, confidence=args.confidence)
    if args.markdown is not None:
        write_text(args.markdown, compare_markdown(cmp, args.max_changes))
    if args.markdown != "-":
        print(compare_text(cmp, args.max_changes))
    return 0


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a confidence level is between 0 and 1")
    return value


def add_parsers(sub: Any) -> None:
    run = command(sub, "run", "run a task over a dataset as an experiment", [
        "otel-experiments run myapp.tasks:answer --dataset faq.jsonl --evaluator exact_match",
        "otel-experiments run myapp.tasks:answer --dataset ds-123 --name prompt-v2 \\",
        "    --evaluator myapp.evals:judge --summary-evaluator accuracy \\",
        "    --config model=gpt-4o --config temperature=0 --output results.json",
    ], """
        Each record runs inside start_observe (its spans are exported to the endpoint);
        evaluator results become metrics. Writes every record and the summary to --output.
        Re-running an interrupted run with the same --name resumes it.""")
    run.add_argument("task", metavar="MODULE:TASK", help="the task: callable(input) -> output")
    run.add_argument("--dataset", required=True, metavar="PATH|ID",
                     help="a .jsonl / .csv / .json file, or a server dataset id")
    run.add_argument("--evaluator", action="append", metavar="MODULE:FN",
                     help=f"per-record evaluator (repeatable); built-in: "
                     f"{', '.join(RECORD_BUILTINS)}")
    run.add_argument("--summary-evaluator", action="append", metavar="MODULE:FN",
                     help=f"over all records (repeatable); built-in: "
                     f"{', '.join(SUMMARY_BUILTINS)}")
    run.add_argument("--name", help="experiment name (default: the task's name)")
    run.add_argument("--feature-slug", help="feature slug (default: from the task's name)")
    run.add_argument("--project-id", help="project to file the experiment under")
    run.add_argument("--config", action="append", metavar="KEY=VALUE",
                     help="stored with the experiment (VALUE parsed as JSON when it is)")
    run.add_argument("--max-concurrency", type=int, default=8, metavar="N",
                     help="records in flight at once (default: 8)")
    run.add_argument("--task-timeout", type=float, metavar="SECONDS",
                     help="a record past this is recorded as failed")
    run.add_argument("--evaluator-timeout", type=float, metavar="SECONDS",
                     help="an evaluator past this is recorded as its error on the record")
    run.add_argument("--rate-limit", type=float, metavar="PER_SECOND",
                     help="at most this many record starts per second")
    run.add_argument("--repetitions", type=int, default=1, metavar="K",
                     help="run every record K times: intervals, pass@k and pass^k (default: 1)")
    run.add_argument("--resume", default="auto", metavar="auto|yes|no|EXPERIMENT_ID",
                     help="auto (default): resume an interrupted run of the same name")
    run.add_argument("--output", default="results.json", metavar="FILE",
                     help="results file (default: results.json)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_prices_arg(run)
    add_client_args(run)
    run.set_defaults(func=_run)

    gate = command(sub, "gate", "pass or fail a run against quality thresholds", [
        "otel-experiments gate results.json --min exact_match=0.9 --max-failures 0",
        "otel-experiments gate results.json --baseline main.json --tolerance 0.02",
        "otel-experiments gate results.json --baseline main.json --confidence 0.95",
        "otel-experiments gate exp-123 --min accuracy=0.8 --markdown comment.md "
        "--junit gate.xml",
        "otel-experiments gate exp-123 --max-cost 0.50 --max-p95-ms 2000 --prices prices.toml",
    ], """
        Exit status 0 when every check passes, 1 when one fails, 2 for a usage error.
        A failure is a record whose task raised or timed out; low scores are judged by
        --min / --max. With --baseline, no metric may drop by more than --tolerance.""")
    gate.add_argument("results", metavar="RESULTS.json|EXPERIMENT_ID",
                      help="or where:PATH=VALUE[,...]: the newest experiment whose run "
                      "metadata matches (e.g. where:git.branch=main,model=gpt-4o)")
    gate.add_argument("--min", action="append", metavar="LABEL=VALUE",
                      help="the metric's pass rate / mean must be at least VALUE")
    gate.add_argument("--max", action="append", metavar="LABEL=VALUE",
                      help="... at most VALUE (e.g. error_rate=0.05)")
    gate.add_argument("--max-failures", type=int, metavar="N",
                      help="at most N records whose task failed")
    gate.add_argument("--baseline", metavar="OLD.json|EXPERIMENT_ID",
                      help="fail on a regression against this run")
    gate.add_argument("--tolerance", type=float, default=0.0, metavar="DELTA",
                      help="allowed drop against the baseline (default: 0)")
    gate.add_argument("--confidence", type=_level, metavar="LEVEL",
                      help="with --baseline: fail only on a regression significant at this "
                      "level (e.g. 0.95; paired per record), so noise alone does not fail")
    gate.add_argument("--markdown", nargs="?", const="-", metavar="FILE",
                      help="Markdown for a pull-request comment (to FILE, or stdout)")
    gate.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    gate.add_argument("--max-cost", type=float, metavar="USD",
                      help="the run's token cost must be at most USD (needs --prices or a "
                      "priced result; fails when a model is unpriced)")
    gate.add_argument("--max-p95-ms", type=float, metavar="MS",
                      help="the records' p95 latency must be at most MS milliseconds")
    add_prices_arg(gate)
    add_client_args(gate)
    gate.set_defaults(func=_gate)

    cmp = command(sub, "compare", "compare two runs: metric deltas, winner, changed records", [
        "otel-experiments compare exp-aaa exp-bbb",
        "otel-experiments compare main.json results.json --markdown",
        "otel-experiments compare where:prompt_version=v1 where:prompt_version=v2 "
        "--prices prices.json",
    ])
    cmp.add_argument("a", metavar="EXP_A", help="baseline: results file, experiment id, or "
                     "where:PATH=VALUE[,...] (the newest experiment whose run metadata matches)")
    cmp.add_argument("b", metavar="EXP_B", help="candidate: the same kinds")
    cmp.add_argument("--markdown", nargs="?", const="-", metavar="FILE",
                     help="Markdown instead of the table (to FILE, or stdout)")
    cmp.add_argument("--confidence", type=_level, default=0.95, metavar="LEVEL",
                     help="level of each metric's interval and paired test (default: 0.95)")
    cmp.add_argument("--max-changes", type=int, default=20, metavar="N",
                     help="changed records listed (default: 20)")
    add_prices_arg(cmp)
    add_client_args(cmp)
    cmp.set_defaults(func=_compare)


__all__ = ["add_parsers"]
