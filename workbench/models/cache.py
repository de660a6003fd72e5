"""A persistent score cache shared by all notebooks of a checkout.

Scores are keyed by ``sha256(model fingerprint, max_length, exact formatted text)``
and stored in one SQLite file. Each batch is written in one transaction, so a
write is atomic: an interrupted run leaves every finished batch in the cache and
the next run resumes from there. Several processes may read and write at once
(WAL journal, busy timeout).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

from workbench.models.fingerprint import sha256_bytes
from workbench.paths import cache_dir

__all__ = ["ScoreCache", "score_key"]


def score_key(fingerprint: str, max_length: int | None, text: str) -> str:
    return sha256_bytes(fingerprint, f"max_length={max_length}", text)


class ScoreCache:
    """``get_many`` / ``put_many`` over a SQLite table ``scores(key, score)``."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else cache_dir() / "scores.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL NOT NULL)")

    @contextmanager
    def _connect(self):
        """A connection that commits on success, rolls back on error, and is always closed."""
        con = sqlite3.connect(self.path, timeout=60)
        try:
            with con:
                yield con
        finally:
            con.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, float] = {}
        with self._connect() as con:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(con.execute(f"SELECT key, score FROM scores WHERE key IN ({marks})", chunk).fetchall())
        return found

    def put_many(self, scores: Mapping[str, float]) -> None:
        """Write scores in one transaction: all of them land, or none."""
        rows = [(k, float(v)) for k, v in scores.items()]
        with self._connect() as con:
            con.executemany("INSERT OR REPLACE INTO scores (key, score) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._connect() as con:
            return con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def clear(self) -> None:
        with self._connect() as con:
            con.execute("DELETE FROM scores")

    def __repr__(self) -> str:
        return f"ScoreCache({str(self.path)!r})"
