"""Experiment and identity models (frozen, slotted, validated on construction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

#: Longest id or name accepted anywhere (also the W3C Baggage value limit we enforce).
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 512


def _has_control_chars(value: str) -> bool:
    # Control characters, and lone surrogates (from surrogateescape-decoded bytes): the
    # latter cannot be encoded as UTF-8, so no JSON encoder or URL would accept them.
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in value)


def validate_id(value: object, field: str) -> str:
    """Return ``value`` if it is a usable id, else raise ``TypeError``/``ValueError``."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, got {type(value).__name__}")
    if not value or value.strip() != value or " " in value:
        raise ValueError(
            f"{field} must be a non-empty string without spaces, got {value[:80]!r}"
        )
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{field} is {len(value)} characters; the limit is {MAX_ID_LENGTH}")
    if not value.isprintable():
        raise ValueError(f"{field} contains unprintable characters: {value[:80]!r}")
    return value


def validate_name(value: object, field: str, *, optional: bool = True) -> str | None:
    """Return ``value`` if it is a usable display name (or ``None`` when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{field} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{field} is {len(value)} characters; the limit is {MAX_NAME_LENGTH}")
    if _has_control_chars(value):
        raise ValueError(f"{field} contains control characters: {value[:80]!r}")
    return value


@dataclass(slots=True, frozen=True)
class Experiment:
    """An experiment as stored by a backend (Basalt's ``Experiment``)."""

    id: str
    name: str
    feature_slug: str
    created_at: str

    def __post_init__(self) -> None:
        validate_id(self.id, "Experiment.id")
        validate_name(self.name, "Experiment.name", optional=False)
        validate_id(self.feature_slug, "Experiment.feature_slug")
        if not isinstance(self.created_at, str):
            raise TypeError("Experiment.created_at must be an ISO 8601 str")

    def to_trace(self) -> TraceExperiment:
        return TraceExperiment(self.id, self.name, self.feature_slug)


@dataclass(slots=True, frozen=True)
class TraceExperiment:
    """The experiment metadata attached to spans: only ``id`` is required."""

    id: str
    name: str | None = None
    feature_slug: str | None = None

    def __post_init__(self) -> None:
        validate_id(self.id, "TraceExperiment.id")
        validate_name(self.name, "TraceExperiment.name")
        if self.feature_slug is not None:
            validate_id(self.feature_slug, "TraceExperiment.feature_slug")

    @classmethod
    def coerce(cls, value: ExperimentLike) -> TraceExperiment:
        """Accept an id string, an ``Experiment``, a ``TraceExperiment`` or a mapping."""
        if isinstance(value, TraceExperiment):
            return value
        if isinstance(value, Experiment):
            return value.to_trace()
        # Errors name what the caller passed (``experiment=...``), not a class they never used.
        if isinstance(value, str):
            return cls(validate_id(value, "experiment"))
        if isinstance(value, Mapping):
            unknown = set(value) - {"id", "name", "feature_slug", "created_at"}
            if unknown:
                raise ValueError(f"unknown experiment field(s): {sorted(unknown)}")
            return cls(
                validate_id(value.get("id"), "experiment['id']"),
                validate_name(value.get("name"), "experiment['name']"),
                None if value.get("feature_slug") is None
                else validate_id(value.get("feature_slug"), "experiment['feature_slug']"),
            )
        raise TypeError(
            "experiment must be an id str, Experiment, TraceExperiment or mapping, "
            f"got {type(value).__name__}"
        )


@dataclass(slots=True, frozen=True)
class Organization:
    id: str
    name: str | None = None

    def __post_init__(self) -> None:
        validate_id(self.id, "organization.id")
        validate_name(self.name, "organization.name")


@dataclass(slots=True, frozen=True)
class User:
    id: str
    name: str | None = None

    def __post_init__(self) -> None:
        validate_id(self.id, "user.id")
        validate_name(self.name, "user.name")


def _party(value: object, kind: type[Organization] | type[User], field: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"id", "name"}
        if unknown:
            raise ValueError(f"unknown {field} field(s): {sorted(unknown)}")
        return kind(value.get("id"), value.get("name"))  # type: ignore[arg-type]
    raise TypeError(f"{field} must be a mapping with 'id' (and 'name'), got {type(value).__name__}")


@dataclass(slots=True, frozen=True)
class Identity:
    """Who a unit of work runs for. Also accepts Basalt's dict form via :meth:`coerce`."""

    organization: Organization | None = None
    user: User | None = None

    def __post_init__(self) -> None:
        if self.organization is not None and not isinstance(self.organization, Organization):
            object.__setattr__(
                self, "organization", _party(self.organization, Organization, "organization")
            )
        if self.user is not None and not isinstance(self.user, User):
            object.__setattr__(self, "user", _party(self.user, User, "user"))

    @classmethod
    def coerce(cls, value: IdentityLike) -> Identity:
        """Accept an ``Identity`` or ``{"organization": {"id", "name"}, "user": {...}}``."""
        if isinstance(value, Identity):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"organization", "user"}
            if unknown:
                raise ValueError(f"unknown identity field(s): {sorted(unknown)}")
            return cls(
                _party(value.get("organization"), Organization, "organization"),
                _party(value.get("user"), User, "user"),
            )
        raise TypeError(f"identity must be an Identity or a mapping, got {type(value).__name__}")


ExperimentLike: TypeAlias = str | Experiment | TraceExperiment | Mapping[str, Any]
IdentityLike: TypeAlias = Identity | Mapping[str, Any]
