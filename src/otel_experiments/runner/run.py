"""``run_experiment``: a task over a dataset, scored, stored and summarised."""

from __future__ import annotations

import inspect
import logging
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from ..models import Experiment, TraceExperiment
from ..observation.start import start_observe
from ..pricing import PriceSource, PriceTable, load_prices
from ._record import RecordRunner, _run_coroutine
from .datasets import LoadedDataset, Record, load_dataset
from .evaluators import Evaluator, label_of, record_evaluator, summary_evaluator
from .executors import Interrupted, RateLimiter, run_in_asyncio, run_in_threads
from .progress import Progress
from .reproducibility import reproducibility
from .results import ExperimentResult, RecordOutcome, stored_outcomes, summarize
from .tracing import Delivery, delivery_is_clean, delivery_line, ensure_export
from .usage import attach_usage

if TYPE_CHECKING:
    from ..client import ExperimentsClient

logger = logging.getLogger("otel_experiments.runner")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run; ``result`` holds the records that finished. The
    experiment is marked ``INTERRUPTED``: run again with the same name to resume."""

    def __init__(self, result: ExperimentResult) -> None:
        super().__init__(f"experiment {result.experiment_id} interrupted after "
                         f"{len(result.records)} records")
        self.result = result


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
    return slug[:200] or "experiment"


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def _previous(client: ExperimentsClient, name: str, feature_slug: str,
              resume: bool | str | None) -> Any:
    """The experiment to resume, or ``None`` for a new one."""
    if resume is False:
        return None
    if isinstance(resume, str):
        return client.experiments.retrieve(resume)
    latest = None
    for exp in client.experiments.list(feature_slug=feature_slug, page_size=1000):
        if exp.name == name:
            latest = exp
    if latest is None:
        return None
    if resume is True or latest.status == "INTERRUPTED":
        return latest
    return None


class _Session:
    """The server side of one run; every call degrades to a warning when offline."""

    def __init__(self, client: ExperimentsClient, quiet: bool) -> None:
        self.client, self.quiet, self.online = client, quiet, True

    def update(self, experiment_id: str, **changes: Any) -> None:
        if not self.online:
            return
        from ..client import ExperimentsError

        try:
            self.client.experiments.update(experiment_id, **changes)
        except ExperimentsError as exc:
            logger.warning("otel-experiments: could not update experiment %s: %s",
                           experiment_id, exc)


def run_experiment(
    name: str,
    dataset: Any,
    task: Callable[..., Any],
    evaluators: Sequence[Callable[..., Any]] = (),
    summary_evaluators: Sequence[Callable[..., Any]] = (),
    *,
    feature_slug: str | None = None,
    description: str | None = None,
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    project_id: str | None = None,
    client: ExperimentsClient | None = None,
    max_concurrency: int = 8,
    executor: Executor | None = None,
    task_timeout: float | None = None,
    evaluator_timeout: float | None = None,
    rate_limit: float | None = None,
    resume: bool | str | None = None,
    dataset_version: int | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    progress: bool | None = None,
    quiet: bool = False,
    repetitions: int = 1,
    prices: PriceSource | None = None,
) -> ExperimentResult:
    """Run ``task`` on every record of ``dataset`` as experiment ``name``; score and store it.

    Args:
        dataset: a list of dicts (``input``, ``expected_output``, ``metadata``, ``id``), a
            ``.jsonl`` / ``.csv`` / ``.json`` path, a client ``Dataset`` or a dataset id.
        task: ``task(input) -> output``, sync or async. Each record runs inside
            ``start_observe`` (its own trace), so every span the task makes is exported.
        evaluators: per record, see :mod:`otel_experiments.runner.evaluators`; their
            results become metrics on the record's span.
        summary_evaluators: over all records; stored in the experiment's metadata.
        config: stored with the experiment (model, prompt, temperature...).
        max_concurrency: threads (sync task) or concurrent coroutines (async task).
        executor: run tasks on this ``concurrent.futures.Executor`` (a process pool, or
            ``dask.distributed.Client.get_executor()``); spans and scores stay here.
        task_timeout: seconds; a record past it is recorded as failed (``TimeoutError``).
        evaluator_timeout: seconds; an evaluator past it is recorded as that evaluator's
            error on the record (no metric), and the record's other evaluators still run.
        rate_limit: at most this many record starts per second.
        resume: ``None`` resumes an ``INTERRUPTED`` experiment of the same name and
            feature slug; ``True`` resumes the latest of that name whatever its status; an
            experiment id resumes that one; ``False`` always starts a new experiment.
            Finished records are skipped (read back from the server), so none is stored twice.
        tracer_provider: the SDK provider to record on (default: the global one); it is
            ``configure()``-d to export to the client's endpoint unless it already does.
        progress: a progress bar (default: when stderr is a terminal).
        repetitions: run every record this many times (each run its own span, its index
            in the span's metadata as ``experiment.repetition``); the summary then gives
            each metric's interval over records, and pass@k / pass^k for booleans.
        prices: a price table (file path, mapping or ``PriceTable``; USD per 1M tokens):
            the GenAI usage of the run's spans, read back into ``summary["usage"]``, is
            then priced in ``summary["cost"]`` (see :mod:`otel_experiments.runner.usage`).

    Returns an :class:`ExperimentResult`. Ctrl-C marks the experiment ``INTERRUPTED`` and
    raises :class:`RunInterrupted` (a ``KeyboardInterrupt``) carrying the partial result.
    """
    if not callable(task):
        raise TypeError(f"task must be callable, got {type(task).__name__}")
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) \
            or max_concurrency < 1:
        raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
        raise ValueError(f"repetitions must be an int >= 1, got {repetitions!r}")
    for flag, value in (("task_timeout", task_timeout), ("evaluator_timeout", evaluator_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{flag} must be > 0 seconds, got {value!r}")
    record_evals: list[Evaluator] = [record_evaluator(e) for e in evaluators]
    summary_evals: list[Evaluator] = [summary_evaluator(e) for e in summary_evaluators]
    limiter = RateLimiter(rate_limit) if rate_limit is not None else None
    from ..client import APIConnectionError, ExperimentsClient

    own_client = client is None
    client = client or ExperimentsClient()
    try:
        slug = feature_slug or _slug(label_of(task))
        loaded = load_dataset(dataset, client, dataset_version)
        plan = _Plan(name, loaded, task, record_evals, summary_evals, slug, description,
                     dict(config or {}), dict(metadata or {}), project_id, max_concurrency,
                     executor, task_timeout, evaluator_timeout, limiter, resume,
                     tracer_provider, progress, quiet, repetitions, prices=load_prices(prices))
        return _run(plan, client, APIConnectionError)
    finally:
        if own_client:
            client.close()


@dataclass
class _Plan:
    """Everything :func:`run_experiment` was asked to do, validated."""

    name: str
    loaded: LoadedDataset
    task: Callable[..., Any]
    record_evals: list[Evaluator]
    summary_evals: list[Evaluator]
    slug: str
    description: str | None
    config: dict[str, Any]
    metadata: dict[str, Any]
    project_id: str | None
    max_concurrency: int
    executor: Executor | None
    task_timeout: float | None
    evaluator_timeout: float | None
    limiter: RateLimiter | None
    resume: bool | str | None
    tracer_provider: trace.TracerProvider | None
    progress: bool | None
    quiet: bool
    repetitions: int = 1
    prices: PriceTable | None = None


def _run(plan: _Plan, client: ExperimentsClient,
         offline_error: type[Exception]) -> ExperimentResult:
    name, loaded, task, slug, quiet = plan.name, plan.loaded, plan.task, plan.slug, plan.quiet
    config, executor = plan.config, plan.executor
    session = _Session(client, quiet)
    run_meta = {**plan.metadata, "reproducibility": reproducibility(), "dataset": {
        "id": loaded.dataset_id, "version": loaded.dataset_version, "name": loaded.name,
        "source": loaded.source, "record_count": len(loaded.records)},
        "runner": {"max_concurrency": plan.max_concurrency, "task_timeout": plan.task_timeout,
                   "repetitions": plan.repetitions,
                   "evaluator_timeout": plan.evaluator_timeout,
                   "executor": type(executor).__name__ if executor is not None else (
                       "asyncio" if inspect.iscoroutinefunction(task) else "threads")}}
    previous: dict[str, RecordOutcome] = {}
    try:
        found = _previous(client, name, slug, plan.resume)
        if found is not None:
            experiment: Experiment | TraceExperiment = found.experiment
            previous = stored_outcomes(client, found.id)
            run_meta = {**found.metadata, **run_meta, "resumed": len(previous)}
            _say(quiet, f"resuming experiment {found.id} ({len(previous)} of "
                        f"{len(loaded.records) * plan.repetitions} records already done)")
        else:
            experiment = client.experiments.create(
                slug, name, description=plan.description, project_id=plan.project_id,
                dataset_id=loaded.dataset_id, dataset_version=loaded.dataset_version,
                status="RUNNING", config=config, metadata=run_meta)
    except offline_error as exc:
        session.online = False
        experiment = Experiment(f"exp-{uuid.uuid4().hex}", name, slug, "")
        logger.warning("otel-experiments: %s; running offline as %s (spans are spooled and "
                       "sent when the server is back)", exc, experiment.id)
    session.update(experiment.id, status="RUNNING", config=config, metadata=run_meta)
    try:
        return _execute(plan, client, session, experiment, previous, run_meta)
    except Exception:  # a bug or a broken dependency, not a record: say so on the server
        session.update(experiment.id, status="FAILED")
        raise


def _execute(plan: _Plan, client: ExperimentsClient, session: _Session,
             experiment: Experiment | TraceExperiment, previous: dict[str, RecordOutcome],
             run_meta: dict[str, Any]) -> ExperimentResult:
    name, loaded, task, slug, quiet = plan.name, plan.loaded, plan.task, plan.slug, plan.quiet
    limiter, max_concurrency = plan.limiter, plan.max_concurrency
    handle = ensure_export(client, plan.tracer_provider)
    delivery = Delivery.start(handle)
    scope = start_observe(slug, label_of(task), experiment=experiment, new_trace=True,
                          tracer_provider=plan.tracer_provider)
    runner = RecordRunner(scope, task, plan.record_evals, plan.task_timeout, plan.executor,
                          plan.evaluator_timeout)
    jobs = expand(loaded.records, plan.repetitions)
    todo = [(i, r) for i, r in enumerate(jobs) if r.key not in previous]
    records = [r for _, r in todo]
    outcomes: dict[int, RecordOutcome] = {}
    interrupted = False
    with Progress(len(records), name, plan.progress if not quiet else False) as bar:
        def on_done(outcome: RecordOutcome) -> None:
            bar.advance(failed=outcome.failed)

        try:
            if plan.executor is None and inspect.iscoroutinefunction(task):
                done = run_in_asyncio(runner, records, max_concurrency, limiter, on_done)
            else:
                done = run_in_threads(runner, records, max_concurrency, limiter, on_done)
        except Interrupted as stop:
            done, interrupted = stop.outcomes, True
    outcomes = {todo[j][0]: outcome for j, outcome in done.items()}

    ordered: list[RecordOutcome] = []
    for i, record in enumerate(jobs):
        found_outcome = outcomes.get(i) or previous.get(record.key)
        if found_outcome is not None:
            ordered.append(found_outcome)
    summary = summarize(ordered)
    if not interrupted:
        summary["evaluations"] = _summaries(plan.summary_evals, ordered)
    report = delivery.finish()
    if not session.online:
        report["offline"] = True
    else:  # the spans are on the server now: their GenAI usage, priced
        attach_usage(client, experiment.id, ordered, summary, plan.prices)
    status = "INTERRUPTED" if interrupted else (
        "FAILED" if ordered and summary["failed_count"] == len(ordered) else "COMPLETED")
    session.update(experiment.id, status=status,
                   metadata={**run_meta, "summary": summary, "delivery": report})
    result = ExperimentResult(experiment.id, name, status, ordered, summary, slug,
                              loaded.dataset_id, loaded.dataset_version, plan.config,
                              run_meta, report, client.endpoint if session.online else None)
    line = delivery_line(report)
    if delivery_is_clean(report):
        _say(quiet, line)
    else:
        logger.warning("otel-experiments: experiment %s: %s", experiment.id, line)
        _say(quiet, line)
    if interrupted:
        _say(quiet, f"interrupted: {len(ordered)} of {len(jobs)} records done; run "
                    f"again with the same name to resume experiment {experiment.id}")
        raise RunInterrupted(result)
    _say(quiet, f"experiment {experiment.id} ({name}): {len(ordered)} records, "
                f"{summary['failed_count']} failed")
    return result


def expand(records: list[Record], repetitions: int) -> list[Record]:
    """Every run to make: each record once, or ``repetitions`` times in a row (record
    order kept, so a progress bar and an interruption advance record by record)."""
    if repetitions == 1:
        return records
    return [replace(r, repetition=j) for r in records for j in range(repetitions)]


def _summaries(evaluators: list[Evaluator], records: list[RecordOutcome]) -> dict[str, Any]:
    labels = sorted({label for r in records for label in r.metrics})
    values = {
        "inputs": [r.input for r in records],
        "outputs": [r.output for r in records],
        "expected_outputs": [r.expected_output for r in records],
        "metadata": [r.metadata for r in records],
        "errors": [r.error for r in records],
        "evaluations": {label: [r.metrics.get(label) for r in records] for label in labels},
    }
    out: dict[str, Any] = {}
    for ev in evaluators:
        try:
            value = ev.fn(**ev.kwargs(values))
            if inspect.isawaitable(value):
                value = _run_coroutine(value)
            if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
                value = value.value  # a Metric
            out[ev.label] = value
        except Exception as exc:
            logger.warning("otel-experiments: summary evaluator %r raised %s: %s", ev.label,
                           type(exc).__name__, exc)
            out[ev.label] = None
    return out


__all__ = ["RunInterrupted", "run_experiment"]
