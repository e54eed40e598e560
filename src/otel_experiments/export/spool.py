"""A bounded on-disk spool of request bodies that could not be delivered yet.

``{root}/{hash of the endpoint URL without credentials}/`` (so a spool is never replayed
to another backend) holds files ``{created_ns:020d}-{spans}-{pid}-{rand}.body`` (names
sort oldest first), each holding one body or several (:mod:`.spoolfile`: a JSON header
line, then the bodies as they go on the wire; never credentials or headers).
:meth:`Spool.put_many` writes many bodies as one file with one fsync (group commit).
Files are written under a temporary name, fsync'd, ``os.replace``'d and the directory
fsync'd (a crash never leaves a torn or vanished body);
a sender claims one by renaming it to ``{name}.claim-{pid}-{ms}`` (atomic, so processes
sharing the directory never send the same file at once), then deletes it, renames it
back, or replaces it by the bodies it could not send (:meth:`Spool.requeue`).
Claims of dead processes, or older than ``STALE_CLAIM_S``, are reclaimed.
Unreadable files are moved aside as ``.corrupt`` (counted in the bound, deleted first).
When ``max_bytes`` is reached the oldest bodies are deleted, with a warning counting the
spans lost. Nothing here raises: I/O errors are logged once, the body is not kept.
Whatever else lies in the directory cannot block or exhaust the process: files are
opened without following symlinks and without blocking (a FIFO named ``*.body``), only
regular files no larger than ``max_bytes`` are read, and directories are ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from .._runtime.forksafe import reinit_after_fork
from .._runtime.logs import WarnOnce
from .spoolfile import Part, pack, read_bounded, unpack

__all__ = ["STALE_CLAIM_S", "Part", "Spool", "SpooledBody", "endpoint_key"]

logger = logging.getLogger("otel_experiments")

#: A claim older than this is considered abandoned (its sender hung or died elsewhere).
STALE_CLAIM_S: Final = 300.0
_SUFFIX: Final = ".body"
_CLAIM: Final = ".claim-"
_CORRUPT: Final = ".corrupt"
_TMP: Final = ".tmp-"
_LOSS_WARNING_INTERVAL_S: Final = 60.0


@dataclass(frozen=True)
class SpooledBody:
    """A claimed file: send its ``parts`` in order, then remove, release or requeue it."""

    name: str
    claimed: Path
    encoding: str
    parts: tuple[Part, ...]

    @property
    def spans(self) -> int:
        return sum(part.spans for part in self.parts)


def endpoint_key(endpoint: str, credentials: Sequence[str] = ()) -> str:
    """A short hash naming the spool of ``endpoint`` (without its userinfo) *and* the
    credentials sent to it: a body is only ever replayed with the credentials it was
    first sent with, never under another application's key. Only the hash touches disk.
    """
    parts = urlsplit(endpoint)
    netloc = parts.netloc.rpartition("@")[2].lower()
    clean = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    if credentials:
        clean += "\0" + "\0".join(credentials)
    return hashlib.sha256(clean.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid() or sys.platform == "win32":
        return True  # only the age of the claim decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        pass
    return True


def _spans_in(name: str) -> int:
    try:
        return int(name.split("-", 2)[1])
    except (IndexError, ValueError):
        return 0


def _is_pending(name: str) -> bool:
    return name.endswith(_SUFFIX) and not name.startswith(".")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class Spool:
    """The spool directory of one endpoint and set of credentials. Thread-safe; safe to
    share between processes."""

    def __init__(self, root: str | os.PathLike[str], endpoint: str, max_bytes: int, *,
                 credentials: Sequence[str] = (), warn_once: WarnOnce | None = None,
                 on_loss: Callable[[int, str], None] | None = None) -> None:
        self.directory = Path(root) / endpoint_key(endpoint, credentials)
        self.max_bytes = max_bytes
        self._warn_once = warn_once or WarnOnce()
        # told of every span lost here (count, reason): the exporter's delivery report
        self._on_loss = on_loss
        self._lock = threading.Lock()
        self._lost_spans = 0
        self._last_loss_warning = float("-inf")
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writing

    def put(self, path: str, content: bytes, spans: int, encoding: str) -> bool:
        """Keep one body; ``False`` (after one warning) when it could not be kept."""
        return self._write(pack([Part(path, spans, content)], encoding), spans, time.time_ns())

    def put_many(self, parts: Sequence[Part], encoding: str) -> int:
        """Keep ``parts`` with one fsync per file, whatever their number (group commit;
        files of at most an eighth of ``max_bytes``): the spans kept. What could not be
        kept is counted and warned about."""
        cap = max(1, self.max_bytes // 8)
        kept = 0
        start = 0
        while start < len(parts):
            end, size = start + 1, len(parts[start].content)
            while end < len(parts) and size + len(parts[end].content) <= cap:
                size += len(parts[end].content)
                end += 1
            chunk = parts[start:end]
            spans = sum(p.spans for p in chunk)
            if self._write(pack(chunk, encoding), spans, time.time_ns()):
                kept += spans
            start = end
        return kept

    def _write(self, data: bytes, spans: int, created_ns: int, *, count: bool = True) -> bool:
        """Write one file crash-safely; ``count``: a failure is a loss (warned, counted)."""
        size = len(data)
        try:
            with self._lock:
                if size > self.max_bytes:
                    self._record_loss(spans, f"a {size}-byte body is over the spool's max_bytes")
                    return False
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not self._make_room(size):
                    self._record_loss(spans, "spool full of bodies being sent")
                    return False
                name = f"{created_ns:020d}-{spans}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
                tmp = self.directory / f"{_TMP}{name}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    # Crash-safe: the data reaches the disk before the name does, and the
                    # name before put() returns (a power cut never leaves a torn body).
                    with os.fdopen(fd, "wb") as file:
                        file.write(data)
                        file.flush()
                        os.fsync(file.fileno())
                    os.replace(tmp, self.directory / name)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                self._sync_directory()
        except OSError as exc:
            if not count:
                return False
            self._warn_once(
                "spool-write",
                "otel-experiments: cannot write to the spool directory %s (%s); %d span(s) dropped",
                self.directory, _why(exc), spans,
            )
            self._lost(spans, "spool_error")
            return False
        return True

    def _sync_directory(self) -> None:
        """fsync the directory, so the rename itself survives a crash (POSIX only)."""
        if sys.platform == "win32":
            return
        fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        except OSError:  # some filesystems refuse fsync on a directory: the data is synced
            pass
        finally:
            os.close(fd)

    def _lost(self, spans: int, reason: str) -> None:
        if self._on_loss is not None and spans > 0:
            try:
                self._on_loss(spans, reason)
            except Exception:  # counting must never cost a body
                logger.debug("otel-experiments: loss callback failed", exc_info=True)

    def _make_room(self, size: int) -> bool:
        """Delete corrupt files, then the oldest bodies, until ``size`` more bytes fit."""
        entries = self._scan()
        total = sum(entry_size for _, entry_size in entries)
        if total + size <= self.max_bytes:
            return True
        victims = sorted(
            ((name, entry_size) for name, entry_size in entries
             if name.endswith(_CORRUPT) or _is_pending(name)),
            key=lambda item: (not item[0].endswith(_CORRUPT), item[0]),
        )
        lost = 0
        for name, entry_size in victims:
            try:
                os.unlink(self.directory / name)
            except FileNotFoundError:
                continue  # claimed by a sender meanwhile: not lost
            except OSError:
                continue  # not ours to delete (e.g. a directory): never blocks a put
            total -= entry_size
            if _is_pending(name):
                lost += _spans_in(name)
            if total + size <= self.max_bytes:
                break
        if lost:
            self._record_loss(lost, f"spool full (max_bytes={self.max_bytes}): oldest bodies deleted")
        return total + size <= self.max_bytes

    def _record_loss(self, spans: int, why: str) -> None:
        """Warn at most once a minute per spool, with the spans lost since the last warning."""
        self._lost(spans, "spool_full")
        self._lost_spans += spans
        now = time.monotonic()
        if now - self._last_loss_warning < _LOSS_WARNING_INTERVAL_S:
            logger.debug("otel-experiments: %s; %d span(s) lost", why, spans)
            return
        self._last_loss_warning = now
        lost, self._lost_spans = self._lost_spans, 0
        logger.warning("otel-experiments: %s; %d span(s) lost (%s)", why, lost, self.directory)

    # ------------------------------------------------------------------ reading

    def _scan(self) -> list[tuple[str, int]]:
        """``(name, size)`` of every file of ours in the directory; missing directory: none."""
        out: list[tuple[str, int]] = []
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    name = entry.name
                    if _is_pending(name) or _CLAIM in name or name.endswith(_CORRUPT) \
                            or name.startswith(_TMP):
                        with contextlib.suppress(OSError):
                            if entry.is_dir(follow_symlinks=False):
                                continue  # never ours: ignored (not counted, not claimed)
                            out.append((name, entry.stat(follow_symlinks=False).st_size))
        except FileNotFoundError:
            return []
        return out

    def pending(self) -> list[str]:
        """Bodies waiting, oldest first, stale claims reclaimed. Never creates the directory."""
        try:
            names = [name for name, _ in self._scan()]
        except OSError as exc:
            self._warn_once("spool-read", "otel-experiments: cannot read the spool directory "
                            "%s (%s)", self.directory, _why(exc))
            return []
        out = []
        now = time.time()
        for name in names:
            if _is_pending(name):
                out.append(name)
            elif _CLAIM in name and not name.startswith("."):
                original = self._reclaim_if_stale(name, now)
                if original is not None:
                    out.append(original)
            elif name.startswith(_TMP):
                self._delete_if_old(name, now)  # a writer died mid-write
        return sorted(out)

    def _reclaim_if_stale(self, name: str, now: float) -> str | None:
        original, _, claim = name.partition(_CLAIM)
        pid_text, _, ms_text = claim.partition("-")
        try:
            pid, claimed_at = int(pid_text), int(ms_text) / 1000.0
        except ValueError:
            pid, claimed_at = 0, 0.0
        if _pid_alive(pid) and now - claimed_at < STALE_CLAIM_S:
            return None
        try:
            os.rename(self.directory / name, self.directory / original)
        except OSError:
            return None  # someone else reclaimed it first
        logger.debug("otel-experiments: reclaimed the abandoned spool claim %s", name)
        return original

    def _delete_if_old(self, name: str, now: float) -> None:
        path = self.directory / name
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > STALE_CLAIM_S:
                path.unlink()

    def claim(self, name: str) -> SpooledBody | None:
        """Take ``name`` for sending; ``None`` if another sender has it or it is unreadable."""
        claimed = self.directory / f"{name}{_CLAIM}{os.getpid()}-{int(time.time() * 1000)}"
        try:
            os.rename(self.directory / name, claimed)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once("spool-claim", "otel-experiments: cannot claim spool file %s (%s)",
                            self.directory / name, _why(exc))
            return None
        try:
            encoding, parts = unpack(read_bounded(claimed, self.max_bytes))
        except (OSError, ValueError, RecursionError) as exc:
            self.quarantine(name, claimed, str(exc) or type(exc).__name__)
            return None
        return SpooledBody(name, claimed, encoding, parts)

    def quarantine(self, name: str, claimed: Path, reason: str) -> None:
        """Move an unusable file aside (``.corrupt``), or delete it; one warning."""
        self._lost(_spans_in(name), "spool_corrupt")
        aside = self.directory / f"{name}{_CORRUPT}"
        try:
            os.rename(claimed, aside)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(claimed)
        self._warn_once(
            "spool-corrupt",
            "otel-experiments: moved the unreadable spool file %s aside (%s); its spans are lost",
            aside, reason[:200],
        )

    def lose_part(self, spans: int, reason: str) -> None:
        """One body of a file is unusable (the others are sent): counted, one warning."""
        self._lost(spans, "spool_corrupt")
        self._warn_once("spool-corrupt-part", "otel-experiments: an unreadable body in the "
                        "spool %s (%s); its %d span(s) are lost", self.directory, reason[:200], spans)

    def remove(self, body: SpooledBody) -> None:
        """Delivered (or rejected for good): delete the claimed file."""
        with contextlib.suppress(OSError):
            os.unlink(body.claimed)

    def requeue(self, body: SpooledBody, sent: int) -> None:
        """Not all delivered: the first ``sent`` parts were (or were refused for good);
        the others become pending again, under the original's age. A crash between the
        write and the delete sends those first parts again: the server keeps a span once
        (experiment + span id), so a copy is deduplicated, never lost."""
        if sent <= 0:
            self.release(body)
            return
        rest = body.parts[sent:]
        try:
            created_ns = int(body.name.split("-", 1)[0])
        except ValueError:
            created_ns = time.time_ns()
        if rest and not self._write(pack(rest, body.encoding), sum(p.spans for p in rest),
                                    created_ns, count=False):
            self.release(body)  # all of it again later: the sent parts are deduplicated
            return
        self.remove(body)

    def release(self, body: SpooledBody) -> None:
        """Not delivered: make the file pending again, for a later attempt."""
        try:
            os.rename(body.claimed, self.directory / body.name)
        except FileNotFoundError:
            pass  # reclaimed as stale by someone else meanwhile
        except OSError as exc:
            self._warn_once("spool-release", "otel-experiments: cannot release spool file "
                            "%s (%s)", body.claimed, _why(exc))
