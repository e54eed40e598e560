"""``ExperimentsClient``: the synchronous client (httpx ``Client``)."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
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


class SyncPager(Generic[T]):
    """Every item of a list, fetching pages as iteration reaches them.

    ``for item in pager`` streams; ``pager.data`` is the whole list (as Gentrace's
    ``experiments.list().data``).
    """

    def __init__(self, send: Callable[[Call[calls.Page]], calls.Page], call: Call[calls.Page]):
        self._send, self._call = send, call
        self._data: list[T] | None = None

    def __iter__(self) -> Iterator[T]:
        call = self._call
        while True:
            items, cursor = self._send(call)
            yield from items
            if cursor is None:
                return
            call = self._call.with_params(**{"page[cursor]": cursor})

    @property
    def data(self) -> list[T]:
        if self._data is None:
            self._data = list(self)
        return self._data


class ExperimentsClient(BaseClient):
    """Projects, datasets and experiments of a backend (the local server or compatible).

    Every argument is optional: ``endpoint``, ``api_key``, ``headers`` and ``timeout`` come
    from ``OTEL_EXPERIMENTS_ENDPOINT`` / ``_API_KEY`` / ``_HEADERS`` / ``_TIMEOUT`` as for
    the exporter. Idempotent calls are retried on 429 / 5xx / connection errors
    (``max_retries``, with backoff honouring ``Retry-After``). Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, *, api_key: str | None = None, endpoint: str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES,
                 http_client: httpx.Client | None = None) -> None:
        super().__init__(api_key=api_key, endpoint=endpoint, headers=headers, timeout=timeout,
                         max_retries=max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(**self._client_options())
        self.projects = Projects(self)
        self.datasets = Datasets(self)
        self.experiments = Experiments(self)

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            request = self._build(self._http, call)
            try:
                response = self._http.send(request)
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
                response.close()
            time.sleep(delay)
            attempt += 1

    def _pager(self, call: Call[calls.Page]) -> SyncPager[Any]:
        return SyncPager(self._send, call)

    def create_sync(self, feature_slug: str, name: str, **kwargs: Any) -> Experiment:
        """Basalt's ``experiments.create_sync``: see :meth:`Experiments.create`."""
        return self.experiments.create(feature_slug, name, **kwargs)

    def create(self, feature_slug: str, name: str, **kwargs: Any) -> Experiment:
        return self.experiments.create(feature_slug, name, **kwargs)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ExperimentsClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _Resource:
    def __init__(self, client: ExperimentsClient) -> None:
        self._client = client


class Projects(_Resource):
    def create(self, name: str, description: str | None = None) -> Project:
        """Get-or-create the project called ``name``."""
        return self._client._send(calls.create_project(name, description))

    def list(self, *, page_size: int | None = None) -> SyncPager[Project]:
        return self._client._pager(calls.list_projects(page_size))

    def retrieve(self, project_id: str) -> Project:
        return self._client._send(calls.retrieve_project(project_id))


class DatasetRecords(_Resource):
    def list(self, dataset_id: str, *, version: int | None = None,
             page_size: int | None = None) -> SyncPager[DatasetRecord]:
        """The records of the current version (or of ``version``)."""
        return self._client._pager(calls.list_records(dataset_id, version, page_size))

    def append(self, dataset_id: str, records: Iterable[Mapping[str, Any] | DatasetRecord]
               ) -> builtins.list[DatasetRecord]:
        """Add records (each request makes a new dataset version)."""
        out: builtins.list[DatasetRecord] = []
        for call in calls.append_records(dataset_id, records):
            batch: builtins.list[DatasetRecord] = self._client._send(call)
            out.extend(batch)
        return out

    def update(self, dataset_id: str, record_id: str, **changes: Any) -> DatasetRecord:
        """Change ``input`` / ``expected_output`` / ``metadata`` / ``tags`` (a new version)."""
        return self._client._send(calls.update_record(dataset_id, record_id, changes))

    def delete(self, dataset_id: str, record_id: str) -> None:
        self._client._send(calls.delete_record(dataset_id, record_id))

    def from_spans(self, dataset_id: str, *, experiment_id: str | None = None,
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
        return self._client._send(calls.records_from_spans(dataset_id, selection))


class Datasets(_Resource):
    def __init__(self, client: ExperimentsClient) -> None:
        super().__init__(client)
        self.records = DatasetRecords(client)

    def create(self, name: str, *, project_id: str | None = None,
               description: str | None = None, metadata: Mapping[str, Any] | None = None,
               records: Iterable[Mapping[str, Any] | DatasetRecord] | None = None) -> Dataset:
        """Create a dataset, with its first records when given."""
        ds = self._client._send(calls.create_dataset(name, project_id, description, metadata))
        if records is not None:
            added = self.records.append(ds.id, records)
            if added:
                ds = self.retrieve(ds.id)
        return ds

    def list(self, *, project_id: str | None = None,
             page_size: int | None = None) -> SyncPager[Dataset]:
        return self._client._pager(calls.list_datasets(project_id, page_size))

    def retrieve(self, dataset_id: str) -> Dataset:
        return self._client._send(calls.retrieve_dataset(dataset_id))

    def versions(self, dataset_id: str) -> builtins.list[int]:
        """Every version of the dataset, oldest first (each write made one; 0 is empty):
        read any of them with ``records.list(dataset_id, version=v)``."""
        ds = self.retrieve(dataset_id)
        return builtins.list(range(1, ds.current_version + 1))


class Experiments(_Resource):
    def create(self, feature_slug: str, name: str, *, description: str | None = None,
               project_id: str | None = None, dataset_id: str | None = None,
               dataset_version: int | None = None, status: str | None = None,
               config: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               id: str | None = None) -> Experiment:
        """Create an experiment; returns the ``Experiment`` ``start_observe`` takes."""
        details = self.create_details(feature_slug, name, description=description,
                                      project_id=project_id, dataset_id=dataset_id,
                                      dataset_version=dataset_version, status=status,
                                      config=config, metadata=metadata, id=id)
        return calls.as_experiment(details, feature_slug)

    create_sync = create

    def create_details(self, feature_slug: str | None, name: str, *,
                       id: str | None = None, **attrs: Any) -> ExperimentDetails:
        """:meth:`create`, returning everything the server stored."""
        attrs = calls.experiment_attrs(name=name, feature_slug=feature_slug, **attrs)
        experiment_id = id or calls.new_experiment_id()
        try:
            return self._client._send(calls.create_experiment(attrs, experiment_id))
        except ConflictError:
            if id is not None:
                raise
            # our own fresh id: a retried create whose first attempt had landed
            return self.retrieve(experiment_id)

    def list(self, *, project_id: str | None = None, feature_slug: str | None = None,
             status: str | None = None, dataset_id: str | None = None,
             where: Mapping[str, Any] | Iterable[str] | None = None,
             page_size: int | None = None) -> SyncPager[ExperimentDetails]:
        """Experiments, oldest first; ``where`` filters on run metadata, every condition
        holding: ``{"config.model": "gpt-4o", "git.dirty": False}`` or
        ``["config.model=gpt-4o"]`` (paths start at ``config.`` / ``metadata.``, or are
        ``model``, ``prompt_version``, ``git.commit``, ``git.dirty``, ``git.branch``)."""
        filters = {"project_id": project_id, "feature_slug": feature_slug, "status": status,
                   "dataset_id": dataset_id}
        return self._client._pager(calls.list_experiments(filters, page_size, where))

    def retrieve(self, experiment_id: str) -> ExperimentDetails:
        return self._client._send(calls.retrieve_experiment(experiment_id))

    def update(self, experiment_id: str, *, name: str | None = None,
               description: str | None = None, status: str | None = None,
               feature_slug: str | None = None, config: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None) -> ExperimentDetails:
        """Gentrace's ``experiments.update``: set the given fields (``metadata`` replaces)."""
        attrs = calls.experiment_attrs(name=name, feature_slug=feature_slug,
                                       description=description, status=status, config=config,
                                       metadata=metadata)
        return self._client._send(calls.update_experiment(experiment_id, attrs))

    def delete(self, experiment_id: str) -> None:
        """Delete the experiment with its spans and metrics."""
        self._client._send(calls.delete_experiment(experiment_id))

    def events(self, experiment_id: str, *, status: str | None = None,
               user_id: str | None = None, organization_id: str | None = None,
               page_size: int | None = None) -> SyncPager[dict[str, Any]]:
        """Every stored span (with its metrics), all pages."""
        filters = {"status": status, "user_id": user_id, "organization_id": organization_id}
        return self._client._pager(calls.list_events(experiment_id, filters, page_size))

    def records(self, experiment_id: str, *, status: str | None = None,
                dataset_record_id: str | None = None, user_id: str | None = None,
                organization_id: str | None = None,
                page_size: int | None = None) -> SyncPager[RecordResult]:
        """Per-record results: record span, its metrics and the dataset record, all pages."""
        filters = {"status": status, "dataset_record_id": dataset_record_id,
                   "user_id": user_id, "organization_id": organization_id}
        return self._client._pager(calls.list_experiment_records(experiment_id, filters,
                                                                 page_size))

    def summary(self, experiment_id: str) -> ExperimentSummary:
        return self._client._send(calls.summary(experiment_id))

    def compare(self, a: str, b: str, *, confidence: float = 0.95) -> ExperimentComparison:
        """Experiment ``b`` against ``a`` on their common dataset records: per metric the
        delta with its interval, the paired test's p-value and the verdict."""
        return self._client._send(calls.compare_experiments(a, b, confidence))
