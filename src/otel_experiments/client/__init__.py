"""HTTP client of the experiments API: ``ExperimentsClient`` and ``AsyncExperimentsClient``.

Both take the exporter's settings (``OTEL_EXPERIMENTS_ENDPOINT``, ``_API_KEY``,
``_HEADERS``, ``_TIMEOUT``) and expose ``projects``, ``datasets`` (with ``records``) and
``experiments`` (CRUD, ``events``, ``records``, ``summary``).
"""

from __future__ import annotations

from ._async import AsyncExperimentsClient, AsyncPager, ListResult
from ._sync import ExperimentsClient, SyncPager
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ExperimentsError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from .models import (
    Dataset,
    DatasetRecord,
    ExperimentComparison,
    ExperimentDetails,
    ExperimentSummary,
    MetricSummary,
    Project,
    RecordResult,
    RecordsFromSpans,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncExperimentsClient",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "Dataset",
    "DatasetRecord",
    "ExperimentComparison",
    "ExperimentDetails",
    "ExperimentSummary",
    "ExperimentsClient",
    "ExperimentsError",
    "InternalServerError",
    "ListResult",
    "MetricSummary",
    "NotFoundError",
    "Project",
    "RateLimitError",
    "RecordResult",
    "RecordsFromSpans",
    "SyncPager",
]
