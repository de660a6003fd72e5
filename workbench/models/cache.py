"""A persistent score cache shared by all notebooks of a checkout.

Scores are keyed by ``sha256(model fingerprint, max_length, exact formatted text)``
and stored in one SQLite file. Each batch is written in one transaction, so a
write is atomic: an interrupted run leaves every finished batch in the cache and
the next run resumes from there. Several processes may read and write at once
(WAL journal, busy timeout). Where SQLite cannot use a WAL journal (a file system
without shared memory or locking, e.g. a network mount; ``WORKBENCH_SQLITE_VFS=unix-dotfile``
selects SQLite's lock-file VFS for those) the cache warns once and keeps SQLite's
default rollback journal: still correct, writers just wait for each other.

Every score is stored with a checksum of its key and exact value, verified on
read: a score damaged on disk (one flipped bit is enough) is not served but
reported with a :class:`ScoreCacheWarning` and recomputed. A cache file SQLite
cannot read (truncated, overwritten, a bad page) is moved aside to
``scores.sqlite.corrupt-<time>`` with a warning naming both paths, and an empty
cache is started in its place.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

from workbench.models.fingerprint import sha256_bytes
from workbench.paths import cache_dir

__all__ = ["ScoreCache", "ScoreCacheWarning", "score_key", "score_checksum"]

_TABLE = "scores_v2"  # v1 ("scores") had no checksums; its rows are not read
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_ADVICE = "set WORKBENCH_CACHE_DIR to keep the cache in another folder"
#: cache files whose missing WAL journal was already reported (warned once per file and process)
_NO_WAL_WARNED: set[str] = set()


class ScoreCacheWarning(UserWarning):
    """A damaged cached score or cache file was found; the scores are recomputed."""


def score_key(fingerprint: str, max_length: int | None, text: str, variant: str = "") -> str:
    """The cache key of one score; a non-empty ``variant`` (e.g. one stochastic MC-dropout pass) gets its own keys."""
    if variant:
        return sha256_bytes(fingerprint, f"max_length={max_length}", f"variant={variant}", text)
    return sha256_bytes(fingerprint, f"max_length={max_length}", text)


def score_checksum(key: str, score: float) -> str:
    """A checksum of a key and the exact bits of its score."""
    return hashlib.sha256(f"{key}|{float(score).hex()}".encode()).hexdigest()[:16]


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


class ScoreCache:
    """``get_many`` / ``put_many`` over a SQLite table of ``(key, score, checksum)``.

    Attributes
    ----------
    path : Path
        The SQLite file (default ``<WORKBENCH_CACHE_DIR or .cache>/scores.sqlite``).
    n_corrupt : int
        Cached scores that failed their checksum so far (not served, recomputed).
    journal_mode : str
        SQLite's journal mode for the file: ``"wal"``, or what SQLite kept where WAL is unavailable.
    moved_aside : list of Path
        Damaged cache files moved aside by this object.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else cache_dir() / "scores.sqlite"
        self.n_corrupt = 0
        self.moved_aside: list[Path] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the score cache folder {self.path.parent}: {exc}; {_ADVICE}") from exc
        self._guarded(self._create)

    def _create(self) -> None:
        with self._connect() as con:
            self.journal_mode = self._use_wal(con)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (key TEXT PRIMARY KEY, score REAL NOT NULL, checksum TEXT NOT NULL)"
            )

    def _use_wal(self, con: sqlite3.Connection) -> str:
        """Switch to the WAL journal; where SQLite refuses, warn once and keep the mode it has."""
        try:
            mode = str(con.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            why = f"SQLite kept journal mode {mode!r}"
        except sqlite3.OperationalError as exc:  # e.g. locked for longer than the busy timeout, no shared memory
            if _is_corruption(exc):
                raise
            mode = str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            why = str(exc)
        if mode != "wal" and str(self.path) not in _NO_WAL_WARNED:
            _NO_WAL_WARNED.add(str(self.path))
            warnings.warn(
                f"score cache {self.path}: the SQLite WAL journal is not available here ({why}); continuing "
                f"with journal mode {mode!r}, in which processes writing the cache wait for each other. "
                f"To restore concurrent writes, {_ADVICE} on a local disk.",
                ScoreCacheWarning,
                stacklevel=5,
            )
        return mode

    @contextmanager
    def _connect(self):
        """A connection that commits on success, rolls back on error, and is always closed."""
        vfs = os.environ.get("WORKBENCH_SQLITE_VFS")
        if vfs:
            try:
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?vfs={vfs}", uri=True, timeout=60)
            except sqlite3.OperationalError as exc:
                raise sqlite3.OperationalError(
                    f"WORKBENCH_SQLITE_VFS={vfs!r}: {exc}; use unix, unix-dotfile, unix-excl or unix-none, or unset it"
                ) from exc
        else:
            con = sqlite3.connect(self.path, timeout=60)
        try:
            with con:
                yield con
        finally:
            con.close()

    def _guarded(self, fn, *args):
        """Run ``fn``; a damaged file is moved aside and ``fn`` runs once more on a fresh cache."""
        try:
            return fn(*args)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise type(exc)(f"score cache {self.path}: {exc}; {_ADVICE}") from exc
            self._move_aside(exc)
        self._create()
        return fn(*args)

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:  # another process moved it first
            aside = None
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                try:
                    if aside is not None:
                        os.replace(side, aside.with_name(aside.name + suffix))
                    else:
                        side.unlink()
                except FileNotFoundError:
                    pass
        where = f"moved it to {aside}" if aside is not None else "another process moved it aside"
        if aside is not None:
            self.moved_aside.append(aside)
        warnings.warn(
            f"score cache {self.path} is damaged ({exc}); {where} and started an empty cache, so scores "
            f"are recomputed. Delete the moved file when you no longer need it, or {_ADVICE}.",
            ScoreCacheWarning,
            stacklevel=4,
        )

    @staticmethod
    def _select(con: sqlite3.Connection, table: str, columns: str, keys: list[str]):
        """The rows of ``table`` whose key is in ``keys`` (``columns``, comma-separated), 500 keys per query."""
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from con.execute(f"SELECT {columns} FROM {table} WHERE key IN ({marks})", chunk)

    def _get_many(self, keys: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        bad: list[str] = []
        with self._connect() as con:
            for key, score, checksum in self._select(con, _TABLE, "key, score, checksum", keys):
                if isinstance(score, float) and checksum == score_checksum(key, score):
                    found[key] = score
                else:
                    bad.append(key)
        if bad:
            self.n_corrupt += len(bad)
            warnings.warn(
                f"score cache {self.path}: {len(bad)} cached score(s) failed their checksum (the file was "
                "changed or damaged on disk); they are not used but recomputed and rewritten. "
                f"If this repeats, delete the file or {_ADVICE}.",
                ScoreCacheWarning,
                stacklevel=3,
            )
        return found

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        """The verified scores of those ``keys`` that are cached (damaged ones count as missing)."""
        return self._guarded(self._get_many, list(dict.fromkeys(keys)))

    def _put_many(self, rows: list[tuple[str, float, str]]) -> None:
        with self._connect() as con:
            con.executemany(f"INSERT OR REPLACE INTO {_TABLE} (key, score, checksum) VALUES (?, ?, ?)", rows)

    def put_many(self, scores: Mapping[str, float]) -> None:
        """Write scores in one transaction: all of them land, or none."""
        rows = [(k, float(v), score_checksum(k, float(v))) for k, v in scores.items()]
        self._guarded(self._put_many, rows)

    def _count(self) -> int:
        with self._connect() as con:
            return con.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone()[0]

    def __len__(self) -> int:
        return self._guarded(self._count)

    def _clear(self) -> None:
        with self._connect() as con:
            con.execute(f"DELETE FROM {_TABLE}")

    def clear(self) -> None:
        self._guarded(self._clear)

    def __repr__(self) -> str:
        return f"ScoreCache({str(self.path)!r})"
