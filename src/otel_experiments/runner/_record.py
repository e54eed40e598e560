"""One record: its span, the task call (timeout included) and its evaluators.

Each record runs inside ``start_observe`` in a trace of its own, so every span the task
makes is stamped with the experiment and exported, and the evaluators' results become
metrics on the record's span. Whatever the task or an evaluator raises is recorded for
that record; only an interruption (Ctrl-C, cancellation) leaves the record unfinished.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import StatusCode

from ..attributes import REPETITION
from ..observation.span import ObservedSpan
from ..observation.start import start_observe
from .datasets import Record
from .evaluators import Evaluator, as_metric
from .results import RecordOutcome

#: The attribute the exporter routes spans by (``otel_experiments.attributes.EXPERIMENT_ID``).
#: Blanking it on a record cut short by an interruption keeps that span out of the
#: experiment, so a resumed run stores the record exactly once.
_EXPERIMENT_ID_ATTRIBUTE = "experiment.id"


@dataclass
class RecordRunner:
    """What every record of one run shares (built once per run)."""

    scope: start_observe
    task: Callable[..., Any]
    evaluators: Sequence[Evaluator]
    task_timeout: float | None = None
    #: run the task there (a process pool, a Dask cluster) and wait for it here
    remote: Executor | None = None
    evaluator_timeout: float | None = None
    #: set on interruption: records still running are dropped, not recorded
    aborted: threading.Event = field(default_factory=threading.Event)
    #: every record kept so far, by ``Record.key`` (what an interrupted run reports)
    committed: dict[str, RecordOutcome] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def abort(self) -> None:
        """Stop: no record starts, and none still running is kept."""
        with self._lock:
            self.aborted.set()

    def _commit(self, span: ObservedSpan, outcome: RecordOutcome) -> RecordOutcome | None:
        # Keep-or-drop and abort() exclude each other, so a record is either in
        # ``committed`` and exported, or in neither, whenever the interrupt lands.
        with self._lock:
            if self.aborted.is_set():
                _drop(span)
                return None
            self.committed[outcome.key] = outcome
            return outcome

    # -- sync (threads, remote executors) ---------------------------------------------------

    def run(self, record: Record) -> RecordOutcome | None:
        """Run one record; ``None`` when the run was aborted before or during it."""
        if self.aborted.is_set():
            return None
        with self.scope as span:
            outcome = _start(span, record)
            started = time.perf_counter()
            try:
                try:
                    output = self._call(record.input)
                finally:
                    outcome.latency_ms = (time.perf_counter() - started) * 1000
            except Exception as exc:
                _failed(span, outcome, exc)
            except BaseException:
                _drop(span)
                raise
            else:
                outcome.output = output
                span.set_output(output)
                self._evaluate(span, outcome, _values(record, output))
            return self._commit(span, outcome)

    def _evaluate(self, span: ObservedSpan, outcome: RecordOutcome,
                  values: dict[str, Any]) -> None:
        for ev in self.evaluators:
            try:
                kwargs = ev.kwargs(values)
                if self.evaluator_timeout is None:
                    result = ev.fn(**kwargs)
                    if inspect.isawaitable(result):
                        result = _run_coroutine(result)
                else:
                    result = _call_with_timeout(lambda _v, ev=ev, kw=kwargs: ev.fn(**kw),
                                                None, self.evaluator_timeout, "evaluator")
                _record_metric(span, outcome, ev.label, result)
            except Exception as exc:  # that evaluator's error, on this record only
                outcome.evaluator_errors[ev.label] = _describe(exc)

    def _call(self, value: Any) -> Any:
        if self.remote is not None:
            if inspect.iscoroutinefunction(self.task):
                future = self.remote.submit(call_async_task, self.task, value)
            else:
                future = self.remote.submit(self.task, value)
            try:
                return future.result(timeout=self.task_timeout)
            except FutureTimeout:
                future.cancel()
                raise TimeoutError(f"task timed out after {self.task_timeout:g} s") from None
        if self.task_timeout is None:
            result = self.task(value)
            return _run_coroutine(result) if inspect.isawaitable(result) else result
        return _call_with_timeout(self.task, value, self.task_timeout, "task")

    # -- asyncio ----------------------------------------------------------------------------

    async def arun(self, record: Record) -> RecordOutcome | None:
        if self.aborted.is_set():
            return None
        with self.scope as span:
            outcome = _start(span, record)
            started = time.perf_counter()
            try:
                try:
                    output = await asyncio.wait_for(self.task(record.input), self.task_timeout)
                finally:
                    outcome.latency_ms = (time.perf_counter() - started) * 1000
            except asyncio.TimeoutError:
                exc = TimeoutError(f"task timed out after {self.task_timeout:g} s")
                _failed(span, outcome, exc)
            except Exception as exc:
                _failed(span, outcome, exc)
            except BaseException:  # cancelled: the run is being interrupted
                _drop(span)
                raise
            else:
                outcome.output = output
                span.set_output(output)
                for ev in self.evaluators:
                    try:
                        result = ev.fn(**ev.kwargs(_values(record, output)))
                        if inspect.isawaitable(result):
                            try:
                                result = await asyncio.wait_for(result, self.evaluator_timeout)
                            except asyncio.TimeoutError:
                                raise TimeoutError("evaluator timed out after "
                                                   f"{self.evaluator_timeout:g} s") from None
                        _record_metric(span, outcome, ev.label, result)
                    except Exception as exc:
                        outcome.evaluator_errors[ev.label] = _describe(exc)
            return self._commit(span, outcome)


def _start(span: ObservedSpan, record: Record) -> RecordOutcome:
    span.set_input(record.input)
    if record.expected_output is not None:
        span.set_expected_output(record.expected_output)
    span.set_dataset_record_id(record.id)
    if record.repetition is not None:  # carried to the server, which pairs runs by it
        span.set_metadata({**record.metadata, REPETITION: record.repetition})
        span.set_attribute(REPETITION, record.repetition)  # for any other exporter too
    elif record.metadata:
        span.set_metadata(record.metadata)
    return RecordOutcome(record.id, record.input, record.expected_output,
                         metadata=dict(record.metadata), span_id=span.span_id,
                         trace_id=span.trace_id, repetition=record.repetition)


def _values(record: Record, output: Any) -> dict[str, Any]:
    return {"input": record.input, "output": output, "expected_output": record.expected_output,
            "metadata": record.metadata}


def _record_metric(span: ObservedSpan, outcome: RecordOutcome, label: str, result: Any) -> None:
    metric = as_metric(label, result)
    if metric is None:
        return
    name = metric.label or label
    span.add_metric(name, metric.value, metric.type, metric.metric_metadata())
    outcome.metrics[name] = metric.value


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


def _failed(span: ObservedSpan, outcome: RecordOutcome, exc: BaseException) -> None:
    outcome.error = {"type": type(exc).__name__, "message": _describe(exc)}
    span.record_exception(exc)
    span.set_status(StatusCode.ERROR, _describe(exc))


def _drop(span: ObservedSpan) -> None:
    span.set_attribute(_EXPERIMENT_ID_ATTRIBUTE, "")


def _run_coroutine(awaitable: Any) -> Any:
    """Await from sync code (a worker thread has no running loop)."""
    async def wrap() -> Any:
        return await awaitable
    return asyncio.run(wrap())


def call_async_task(task: Callable[..., Any], value: Any) -> Any:
    """An async task run to completion where it is sent (a worker process or cluster)."""
    return asyncio.run(task(value))


def _call_with_timeout(task: Callable[..., Any], value: Any, timeout: float, what: str) -> Any:
    """Run ``task`` in a helper thread and stop waiting after ``timeout`` seconds.

    Python cannot stop a thread: a task past its timeout is recorded as failed and left
    to finish in the background (a daemon thread, so it never holds up exit).
    """
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()  # the task's spans are children of the record span

    def target() -> None:
        try:
            result = task(value)
            box["value"] = _run_coroutine(result) if inspect.isawaitable(result) else result
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=ctx.run, args=(target,), daemon=True,
                              name="otel-experiments-task")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{what} timed out after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


__all__ = ["RecordRunner"]
