"""``AsyncExperimentsClient``: the asyncio twin of :class:`~._sync.ExperimentsClient`."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from ..models import Experiment
from . import _calls as calls
from ._base import DEFAULT_MAX_RETRIES, BaseClient, Call
from .errors import APIConnectionError, APITimeoutError, ConflictError
from .models import (
    Dataset,
    DatasetRecord,
    ExperimentComparison,
    ExperimentDetails,
    ExperimentSummary,
    Project,
    RecordResult,
    RecordsFromSpans,
)

T = TypeVar("T")


class ListResult(Generic[T]):
    """Every item of a list (``.data``), as Gentrace's ``await experiments.list()``."""

    def __init__(self, data: list[T]) -> None:
        self.data = data

    def __iter__(self) -> Any:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class AsyncPager(Generic[T]):
    """``async for item in pager`` streams every page; ``await pager`` gives a
    :class:`ListResult` with all items."""

    def __init__(self, send: Callable[[Call[calls.Page]], Awaitable[calls.Page]],
                 call: Call[calls.Page]) -> None:
        self._send, self._call = send, call

    async def __aiter__(self) -> AsyncIterator[T]:
        call = self._call
        while True:
            items, cursor = await self._send(call)
            for item in items:
                yield item
            if cursor is None:
                return
            call = self._call.with_params(**{"page[cursor]": cursor})

    async def _collect(self) -> ListResult[T]:
        return ListResult([item async for item in self])

    def __await__(self) -> Generator[Any, None, ListResult[T]]:
        return self._collect().__await__()


class AsyncExperimentsClient(BaseClient):
    """The asyncio client: same arguments, resources and errors as ``ExperimentsClient``."""

    def __init__(self, *, api_key: str | None = None, endpoint: str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES,
                 http_client: httpx.AsyncClient | None = None) -> None:
        super().__init__(api_key=api_key, endpoint=endpoint, headers=headers, timeout=timeout,
                         max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(**self._client_options())
        self.projects = AsyncProjects(self)
        self.datasets = AsyncDatasets(self)
        self.experiments = AsyncExperiments(self)

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            request = self._build(self._http, call)
            try:
                response = await self._http.send(request)
            except httpx.TimeoutException as exc:
                delay = self._retry_delay(call, attempt, None)
                if delay is None:
                    raise APITimeoutError(f"{call.method} {request.url} timed out after "
                                          f"{self.timeout:g} s") from exc
            except httpx.TransportError as exc:
                delay = self._retry_delay(call, attempt, None)
                if delay is None:
                    raise APIConnectionError(f"cannot reach {self.endpoint}: {exc}") from exc
            else:
                delay = self._retry_delay(call, attempt, response)
                if delay is None:
                    return self._parse(call, request, response)
                await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    def _pager(self, call: Call[calls.Page]) -> AsyncPager[Any]:
        return AsyncPager(self._send, call)

    async def create(self, feature_slug: str, name: str, **kwargs: Any) -> Experiment:
        """Basalt's ``await experiments.create``: see :meth:`AsyncExperiments.create`."""
        return await self.experiments.create(feature_slug, name, **kwargs)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncExperimentsClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class _Resource:
    def __init__(self, client: AsyncExperimentsClient) -> None:
        self._client = client


class AsyncProjects(_Resource):
    async def create(self, name: str, description: str | None = None) -> Project:
        return await self._client._send(calls.create_project(name, description))

    def list(self, *, page_size: int | None = None) -> AsyncPager[Project]:
        return self._client._pager(calls.list_projects(page_size))

    async def retrieve(self, project_id: str) -> Project:
        return await self._client._send(calls.retrieve_project(project_id))


class AsyncDatasetRecords(_Resource):
    def list(self, dataset_id: str, *, version: int | None = None,
             page_size: int | None = None) -> AsyncPager[DatasetRecord]:
        return self._client._pager(calls.list_records(dataset_id, version, page_size))

    async def append(self, dataset_id: str,
                     records: Iterable[Mapping[str, Any] | DatasetRecord]) -> builtins.list[DatasetRecord]:
        out: builtins.list[DatasetRecord] = []
        for call in calls.append_records(dataset_id, records):
            batch: builtins.list[DatasetRecord] = await self._client._send(call)
            out.extend(batch)
        return out

    async def update(self, dataset_id: str, record_id: str, **changes: Any) -> DatasetRecord:
        return await self._client._send(calls.update_record(dataset_id, record_id, changes))

    async def delete(self, dataset_id: str, record_id: str) -> None:
        await self._client._send(calls.delete_record(dataset_id, record_id))

    async def from_spans(self, dataset_id: str, *, experiment_id: str | None = None,
                   feature_slug: str | None = None, metric: str | None = None,
                   equals: bool | float | str | None = None, min: float | None = None,
                   max: float | None = None, span_name: str | None = None,
                   status: str | None = None, start_after: int | datetime | None = None,
                   start_before: int | datetime | None = None, roots_only: bool = True,
                   expected_output: str = "output",
                   limit: int | None = None) -> RecordsFromSpans:
        """Add stored spans' inputs to the dataset (datasets from traces).

        Spans of ``experiment_id`` and/or of every experiment of ``feature_slug``; only
        record (root) spans unless ``roots_only=False``; optionally those whose trace has
        ``metric`` (equal to ``equals``, or a score within ``min``..``max``), with
        ``span_name`` / ``status`` and starting in [``start_after``, ``start_before``)
        (epoch nanoseconds or aware datetimes). The span's output becomes the expected
        output (``expected_output="expected_output"``: its expected output; ``"none"``).
        An input already in the dataset is not added again; each record's
        ``metadata["source"]`` names the experiment, trace and span it came from.
        """
        selection = calls.from_spans_selection(
            experiment_id=experiment_id, feature_slug=feature_slug, metric=metric,
            equals=equals, minimum=min, maximum=max, span_name=span_name, status=status,
            start_after=start_after, start_before=start_before, roots_only=roots_only,
            expected_output=expected_output, limit=limit)
        return await self._client._send(calls.records_from_spans(dataset_id, selection))


class AsyncDatasets(_Resource):
    def __init__(self, client: AsyncExperimentsClient) -> None:
        super().__init__(client)
        self.records = AsyncDatasetRecords(client)

    async def create(self, name: str, *, project_id: str | None = None,
                     description: str | None = None, metadata: Mapping[str, Any] | None = None,
                     records: Iterable[Mapping[str, Any] | DatasetRecord] | None = None
                     ) -> Dataset:
        ds = await self._client._send(calls.create_dataset(name, project_id, description,
                                                           metadata))
        if records is not None and await self.records.append(ds.id, records):
            ds = await self.retrieve(ds.id)
        return ds

    def list(self, *, project_id: str | None = None,
             page_size: int | None = None) -> AsyncPager[Dataset]:
        return self._client._pager(calls.list_datasets(project_id, page_size))

    async def retrieve(self, dataset_id: str) -> Dataset:
        return await self._client._send(calls.retrieve_dataset(dataset_id))

    async def versions(self, dataset_id: str) -> builtins.list[int]:
        """Every version of the dataset, oldest first (each write made one; 0 is empty):
        read any of them with ``records.list(dataset_id, version=v)``."""
        ds = await self.retrieve(dataset_id)
        return builtins.list(range(1, ds.current_version + 1))


class AsyncExperiments(_Resource):
    async def create(self, feature_slug: str, name: str, *, description: str | None = None,
                     project_id: str | None = None, dataset_id: str | None = None,
                     dataset_version: int | None = None, status: str | None = None,
                     config: Mapping[str, Any] | None = None,
                     metadata: Mapping[str, Any] | None = None,
                     id: str | None = None) -> Experiment:
        details = await self.create_details(
            feature_slug, name, description=description, project_id=project_id,
            dataset_id=dataset_id, dataset_version=dataset_version, status=status,
            config=config, metadata=metadata, id=id)
        return calls.as_experiment(details, feature_slug)

    async def create_details(self, feature_slug: str | None, name: str, *,
                             id: str | None = None, **attrs: Any) -> ExperimentDetails:
        attrs = calls.experiment_attrs(name=name, feature_slug=feature_slug, **attrs)
        experiment_id = id or calls.new_experiment_id()
        try:
            return await self._client._send(calls.create_experiment(attrs, experiment_id))
        except ConflictError:
            if id is not None:
                raise
            return await self.retrieve(experiment_id)

    def list(self, *, project_id: str | None = None, feature_slug: str | None = None,
             status: str | None = None, dataset_id: str | None = None,
             where: Mapping[str, Any] | Iterable[str] | None = None,
             page_size: int | None = None) -> AsyncPager[ExperimentDetails]:
        """Experiments, oldest first; ``where`` filters on run metadata, every condition
        holding: ``{"config.model": "gpt-4o", "git.dirty": False}`` or
        ``["config.model=gpt-4o"]`` (paths start at ``config.`` / ``metadata.``, or are
        ``model``, ``prompt_version``, ``git.commit``, ``git.dirty``, ``git.branch``)."""
        filters = {"project_id": project_id, "feature_slug": feature_slug, "status": status,
                   "dataset_id": dataset_id}
        return self._client._pager(calls.list_experiments(filters, page_size, where))

    async def retrieve(self, experiment_id: str) -> ExperimentDetails:
        return await self._client._send(calls.retrieve_experiment(experiment_id))

    async def update(self, experiment_id: str, *, name: str | None = None,
                     description: str | None = None, status: str | None = None,
                     feature_slug: str | None = None, config: Mapping[str, Any] | None = None,
                     metadata: Mapping[str, Any] | None = None) -> ExperimentDetails:
        attrs = calls.experiment_attrs(name=name, feature_slug=feature_slug,
                                       description=description, status=status, config=config,
                                       metadata=metadata)
        return await self._client._send(calls.update_experiment(experiment_id, attrs))

    async def delete(self, experiment_id: str) -> None:
        await self._client._send(calls.delete_experiment(experiment_id))

    def events(self, experiment_id: str, *, status: str | None = None,
               user_id: str | None = None, organization_id: str | None = None,
               page_size: int | None = None) -> AsyncPager[dict[str, Any]]:
        filters = {"status": status, "user_id": user_id, "organization_id": organization_id}
        return self._client._pager(calls.list_events(experiment_id, filters, page_size))

    def records(self, experiment_id: str, *, status: str | None = None,
                dataset_record_id: str | None = None, user_id: str | None = None,
                organization_id: str | None = None,
                page_size: int | None = None) -> AsyncPager[RecordResult]:
        filters = {"status": status, "dataset_record_id": dataset_record_id,
                   "user_id": user_id, "organization_id": organization_id}
        return self._client._pager(calls.list_experiment_records(experiment_id, filters,
                                                                 page_size))

    async def summary(self, experiment_id: str) -> ExperimentSummary:
        return await self._client._send(calls.summary(experiment_id))

    async def compare(self, a: str, b: str, *, confidence: float = 0.95) -> ExperimentComparison:
        """Experiment ``b`` against ``a`` on their common dataset records: per metric the
        delta with its interval, the paired test's p-value and the verdict."""
        return await self._client._send(calls.compare_experiments(a, b, confidence))
