"""Gentrace-style ``@experiment(name=...)`` around a function that calls ``eval_dataset``.

::

    @experiment(name="prompt-v2", config={"model": "m"})
    def evaluate():
        eval_dataset(data=cases, interaction=answer, evaluators=[exact_match])

    evaluate()

Every ``eval_dataset`` inside one call of the decorated function records into the same
experiment (created by the first one); outside any ``@experiment`` it runs an experiment
of its own named after the interaction. Both go through :func:`run_experiment`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from .evaluators import label_of
from .results import ExperimentResult
from .run import run_experiment

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Active:
    name: str
    options: dict[str, Any]
    experiment_id: str | None = None
    results: list[ExperimentResult] = field(default_factory=list)


_active: contextvars.ContextVar[_Active | None] = contextvars.ContextVar(
    "otel_experiments_active_experiment", default=None)


def experiment(name: str | None = None, *, feature_slug: str | None = None,
               pipeline_id: str | None = None, config: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               **options: Any) -> Callable[[F], F]:
    """Decorate a sync or async function; each call is one experiment (named ``name``,
    default: the function's name). ``pipeline_id`` (Gentrace's word) is the project id;
    ``options`` are passed to :func:`run_experiment`."""
    if pipeline_id is not None:
        options.setdefault("project_id", pipeline_id)

    def decorate(fn: F) -> F:
        exp_name = name or fn.__name__
        settings = {"feature_slug": feature_slug, "config": config, "metadata": metadata,
                    **options}

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _active.set(_Active(exp_name, settings))
                try:
                    return await fn(*args, **kwargs)
                finally:
                    _active.reset(token)
            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _active.set(_Active(exp_name, settings))
            try:
                return fn(*args, **kwargs)
            finally:
                _active.reset(token)
        return cast(F, wrapper)

    return decorate


def eval_dataset(data: Any, interaction: Callable[..., Any],
                 evaluators: Sequence[Callable[..., Any]] = (),
                 summary_evaluators: Sequence[Callable[..., Any]] = (),
                 **options: Any) -> ExperimentResult:
    """Run ``interaction`` over ``data`` (anything :func:`run_experiment` takes as a
    dataset) inside the current ``@experiment``, or as an experiment of its own."""
    active = _active.get()
    if active is None:
        return run_experiment(label_of(interaction), data, interaction, evaluators,
                              summary_evaluators, **options)
    settings = {k: v for k, v in active.options.items() if v is not None}
    settings.update(options)
    if active.experiment_id is not None:
        settings["resume"] = active.experiment_id  # one experiment per decorated call
    else:
        settings.setdefault("resume", False)
    result = run_experiment(active.name, data, interaction, evaluators, summary_evaluators,
                            **settings)
    active.experiment_id = result.experiment_id
    active.results.append(result)
    return result


async def aeval_dataset(data: Any, interaction: Callable[..., Any],
                        evaluators: Sequence[Callable[..., Any]] = (),
                        summary_evaluators: Sequence[Callable[..., Any]] = (),
                        **options: Any) -> ExperimentResult:
    """:func:`eval_dataset` for async code (``await aeval_dataset(...)``): the run goes on
    a worker thread so the caller's event loop keeps running."""
    def call() -> ExperimentResult:
        return eval_dataset(data, interaction, evaluators, summary_evaluators, **options)

    # asyncio.to_thread copies the context: the active @experiment goes along
    return await asyncio.to_thread(call)


__all__ = ["aeval_dataset", "eval_dataset", "experiment"]
