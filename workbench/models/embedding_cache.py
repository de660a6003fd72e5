"""Pooled backbone states kept between scorings, shared by every value head on the same backbone.

A :class:`~workbench.models.adapters.ValueHeadRM` is a frozen ``AutoModel`` backbone
and a linear head on its pooled hidden state. Two such RMs on the same backbone (the two
demo RMs, bootstrap ensemble members, a head retrained on new labels) compute the same
pooled state for the same text; only the head differs. :class:`EmbeddingCache` stores
that state once, keyed by :func:`embedding_key` (the backbone's own fingerprint, the
pooling, and the exact token ids the RM feeds it), so a second head scores a text
with one small matrix product instead of a forward pass of the backbone.

It is a :class:`~workbench.models.cache.ScoreCache` (same SQLite file handling: WAL,
atomic batches, damaged files moved aside) whose rows hold a float32 vector and a checksum
of its exact bytes, verified on read.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from workbench.models.cache import ScoreCache, ScoreCacheWarning
from workbench.models.fingerprint import sha256_bytes
from workbench.paths import cache_dir

__all__ = ["EmbeddingCache", "embedding_key"]

_TABLE = "embeddings_v1"


def embedding_key(backbone_fingerprint: str, token_ids: Sequence[int]) -> str:
    """The cache key of one pooled state: the backbone (weights, pooling, options) and the exact token ids."""
    return sha256_bytes(backbone_fingerprint, np.asarray(token_ids, dtype=np.int64).tobytes())


def _checksum(key: str, blob: bytes) -> str:
    return hashlib.sha256(key.encode() + b"|" + blob).hexdigest()[:16]


class EmbeddingCache(ScoreCache):
    """``get_many`` / ``put_many`` of float32 vectors (default file ``<cache dir>/embeddings.sqlite``)."""

    def __init__(self, path=None):
        super().__init__(path if path is not None else cache_dir() / "embeddings.sqlite")

    def _create(self) -> None:
        with self._connect() as con:
            self.journal_mode = self._use_wal(con)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (key TEXT PRIMARY KEY, emb BLOB NOT NULL, checksum TEXT NOT NULL)"
            )

    def _get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        bad = 0
        with self._connect() as con:
            for key, blob, checksum in self._select(con, _TABLE, "key, emb, checksum", keys):
                if isinstance(blob, bytes) and checksum == _checksum(key, blob) and len(blob) % 4 == 0:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
                else:
                    bad += 1
        if bad:
            self.n_corrupt += bad
            warnings.warn(
                f"embedding cache {self.path}: {bad} cached vector(s) failed their checksum; they are recomputed. "
                "If this repeats, delete the file or set WORKBENCH_CACHE_DIR to keep the caches in another folder.",
                ScoreCacheWarning,
                stacklevel=3,
            )
        return found

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The verified vectors of those ``keys`` that are cached (damaged ones count as missing)."""
        return self._guarded(self._get_many, list(dict.fromkeys(keys)))

    def _put_many(self, rows: list[tuple[str, bytes, str]]) -> None:
        with self._connect() as con:
            con.executemany(f"INSERT OR REPLACE INTO {_TABLE} (key, emb, checksum) VALUES (?, ?, ?)", rows)

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:  # type: ignore[override]
        """Write vectors (stored as float32) in one transaction."""
        rows = []
        for k, v in vectors.items():
            blob = np.ascontiguousarray(v, dtype=np.float32).tobytes()
            rows.append((k, blob, _checksum(k, blob)))
        self._guarded(self._put_many, rows)

    def _count(self) -> int:
        with self._connect() as con:
            return con.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone()[0]

    def _clear(self) -> None:
        with self._connect() as con:
            con.execute(f"DELETE FROM {_TABLE}")

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"
