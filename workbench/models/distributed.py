"""Scoring at size: stream pairs through the local engine or a Ray Data actor pool into Parquet.

:func:`score_to_parquet` reads the pairs in chunks (Parquet files by row group, other
data through :func:`~workbench.data.load_data`), so memory stays flat as the set
grows, and writes one Parquet part per scored chunk into ``OUT.parts/`` next to the
output file, atomically. A run that stops (Ctrl-C, a dead worker, a lost node)
leaves its finished parts; running the same command again skips the rows they hold
and scores only the rest. When every row is scored the parts are merged, in row
order, into ``OUT`` (the columns of :class:`~workbench.models.scoring.PairScores`)
and the parts folder is removed.

``engine="local"``
    This process: :func:`~workbench.models.scoring.score_pairs` on each chunk
    (length-sorted, token-budget batches; ``devices=`` spreads them over GPUs).
``engine="ray"``
    A Ray Dataset of the pending rows, ``map_batches`` with an actor pool: one actor
    per GPU of the cluster (``num_gpus=1`` each), or ``workers`` CPU actors without
    GPUs. Every actor loads the RM once and runs the same engine on its batches. The
    driver streams the results into the Parquet parts and merges every score into
    the score cache (actors on the driver's machine also read and write that cache
    directly, so scores cached by earlier local runs are not recomputed). It joins
    the cluster at ``ray_address`` (``"auto"``, ``"ray://head:10001"`` ...) or starts
    a local one. Actors import :mod:`workbench`, so every node needs the package.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.preferences import from_frame
from workbench.data.shipped import load_data
from workbench.models.cache import ScoreCache, score_key
from workbench.models.formatting import cache_text
from workbench.models.loading import load_reward_model
from workbench.models.scoring import score_pairs

__all__ = [
    "ENGINES",
    "OUTPUT_COLUMNS",
    "PAIR_COLUMNS",
    "StreamResult",
    "iter_pair_chunks",
    "score_to_parquet",
    "PairScorer",
]

ENGINES = ("local", "ray")
PAIR_COLUMNS = ("id", "prompt", "chosen", "rejected", "history", "label", "subset", "category", "group")
#: the columns of the output file, in order (``subset``, ``category`` and ``group`` when the data has them)
OUTPUT_COLUMNS = (
    "id",
    "chosen_score",
    "rejected_score",
    "margin",
    "label",
    "chosen_truncated",
    "rejected_truncated",
)
_MANIFEST = "manifest.json"


@dataclass
class StreamResult:
    """What one :func:`score_to_parquet` run did."""

    out: Path
    engine: str
    rows: int = 0  # pairs in the output
    rows_scored: int = 0  # pairs scored by this run
    rows_resumed: int = 0  # pairs taken from parts of an earlier, interrupted run
    texts_computed: int = 0  # texts the model actually ran on (not from the cache)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "out": str(self.out),
            "engine": self.engine,
            "rows": self.rows,
            "rows_scored": self.rows_scored,
            "rows_resumed": self.rows_resumed,
            "texts_computed": self.texts_computed,
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


def iter_pair_chunks(data, chunk_pairs: int = 4096) -> Iterator[pd.DataFrame]:
    """The pairs of ``data`` in chunks of ``chunk_pairs`` rows, each with a global row number ``_row``.

    A ``.parquet`` file is read one record batch at a time (never whole); each chunk is
    checked and normalised by :func:`~workbench.data.from_frame` (rows without an
    ``id`` get ``row-N``). Anything else goes through :func:`~workbench.data.load_data`.
    """
    if chunk_pairs < 1:
        raise ValueError(f"chunk_pairs must be >= 1, got {chunk_pairs}")
    if isinstance(data, (str, Path)) and str(data).lower().endswith(".parquet") and Path(data).is_file():
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(data).iter_batches(batch_size=chunk_pairs):
            raw = batch.to_pandas()
            if "id" not in raw.columns:
                raw.insert(0, "id", [f"row-{start + i}" for i in range(len(raw))])
            frame = from_frame(raw, source=f"{data} (rows {start + 1}..{start + len(raw)})").frame
            frame = frame.reset_index(drop=True)
            frame.insert(0, "_row", np.arange(start, start + len(frame)))
            start += len(raw)
            yield frame
        return
    if hasattr(data, "frame"):
        frame = data.frame
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        frame = load_data(data).frame
    for s in range(0, len(frame), chunk_pairs):
        chunk = frame.iloc[s : s + chunk_pairs].reset_index(drop=True)
        chunk.insert(0, "_row", np.arange(s, s + len(chunk)))
        yield chunk


def _describe(obj) -> str:
    if isinstance(obj, (str, Path)):
        return str(obj)
    if isinstance(obj, dict):
        return json.dumps({k: _describe(v) for k, v in obj.items()}, sort_keys=True)
    return f"<{type(obj).__name__}>"


class _Parts:
    """The ``OUT.parts/`` folder: a manifest, one Parquet file per scored chunk, merged at the end."""

    def __init__(self, out: Path, manifest: dict):
        self.out = out
        self.dir = out.with_name(out.name + ".parts")
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / _MANIFEST
        if path.exists():
            old = json.loads(path.read_text())
            if old != manifest:
                changed = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
                raise ValueError(
                    f"{self.dir}: holds parts of an interrupted run with another {', '.join(changed)} "
                    f"({old}); delete that folder to start over, or pick another --out"
                )
        else:
            path.write_text(json.dumps(manifest, indent=2, sort_keys=True))

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet"))

    def done_rows(self) -> set[int]:
        import pyarrow.parquet as pq

        done: set[int] = set()
        for f in self.files():
            done.update(pq.read_table(f, columns=["_row"]).column("_row").to_pylist())
        return done

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame.sort_values("_row", kind="stable")
        first, last = int(frame["_row"].iloc[0]), int(frame["_row"].iloc[-1])
        path = self.dir / f"part-{first:012d}-{last:012d}.parquet"
        tmp = path.with_suffix(".tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)  # a part is there whole, or not at all

    def merge(self) -> int:
        """Write every part, in row order, into ``out`` (one part in memory at a time); remove the folder."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = self.files()
        tables = ((f, pq.read_table(f)) for f in files)
        tmp = self.out.with_name(self.out.name + ".tmp")
        writer = None
        rows = 0
        last = -1
        try:
            for f, table in tables:
                rows_here = table.column("_row").to_pylist()
                if rows_here[0] <= last:
                    raise ValueError(f"{f}: rows overlap an earlier part; delete {self.dir} and run again")
                last = rows_here[-1]
                table = table.drop(["_row"])
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema) if table.schema != schema else table)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pq.write_table(pa.table({}), tmp)
        os.replace(tmp, self.out)
        shutil.rmtree(self.dir)
        return rows


def _history_json(frame: pd.DataFrame) -> list[str | None]:
    if "history" not in frame.columns:
        return [None] * len(frame)
    return [json.dumps(h) if isinstance(h, list) and h else None for h in frame["history"]]


def _for_workers(chunk: pd.DataFrame, pending: np.ndarray) -> pd.DataFrame:
    """The columns actors need, with histories as JSON strings (Arrow-friendly)."""
    part = chunk.loc[pending]
    out = pd.DataFrame(
        {
            "_row": part["_row"].to_numpy(np.int64),
            "id": part["id"].astype(str).to_numpy() if "id" in part.columns else part["_row"].astype(str).to_numpy(),
            "prompt": part["prompt"].to_numpy(),
            "chosen": part["chosen"].to_numpy(),
            "rejected": part["rejected"].to_numpy(),
            "history_json": _history_json(part),
            "label": part["label"].to_numpy(dtype=float) if "label" in part.columns else np.ones(len(part)),
        }
    )
    for col in ("subset", "category", "group"):
        if col in part.columns:
            out[col] = part[col].astype(str).to_numpy()
    return out


class PairScorer:
    """A Ray Data actor (also usable on its own): loads the RM once, scores pandas batches of pairs.

    Returns the :class:`~workbench.models.scoring.PairScores` columns plus ``_row``,
    ``chosen_key`` / ``rejected_key`` (score-cache keys, for the driver's merge) and
    ``texts_computed`` (texts of the row that were not in the cache).
    """

    def __init__(self, model, model_kwargs: dict | None = None, cache_path: str | None = None, score_kwargs=None):
        self.rm = load_reward_model(model, **(model_kwargs or {}))
        self.cache = ScoreCache(cache_path) if cache_path else None
        self.score_kwargs = dict(score_kwargs or {})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        frame = batch.copy()
        if "history_json" in frame.columns:
            frame["history"] = [json.loads(h) if isinstance(h, str) else None for h in frame.pop("history_json")]
        result = score_pairs(self.rm, frame, cache=self.cache, progress=False, **self.score_kwargs)
        out = result.frame
        out.insert(0, "_row", frame["_row"].to_numpy())
        hist = frame["history"] if "history" in frame.columns else [None] * len(frame)
        rm = self.rm
        out["chosen_key"] = [
            score_key(rm.fingerprint, rm.max_length, cache_text(rm.format(p, r, h)))
            for p, r, h in zip(frame["prompt"], frame["chosen"], hist)
        ]
        out["rejected_key"] = [
            score_key(rm.fingerprint, rm.max_length, cache_text(rm.format(p, r, h)))
            for p, r, h in zip(frame["prompt"], frame["rejected"], hist)
        ]
        out["texts_computed"] = (~result.chosen_result.from_cache).astype(int) + (
            ~result.rejected_result.from_cache
        ).astype(int)
        return out


def _merge_into_cache(cache: ScoreCache | None, out: pd.DataFrame) -> None:
    if cache is None:
        return
    scores = dict(zip(out["chosen_key"], out["chosen_score"].astype(float)))
    scores.update(zip(out["rejected_key"], out["rejected_score"].astype(float)))
    cache.put_many(scores)


def score_to_parquet(
    model,
    data,
    out,
    *,
    engine: str = "local",
    cache: ScoreCache | str | None = "default",
    chunk_pairs: int = 4096,
    model_kwargs: dict | None = None,
    ray_address: str | None = None,
    workers: int | None = None,
    batch_pairs: int = 256,
    progress: bool = False,
    **score_kwargs,
) -> StreamResult:
    """Score every pair of ``data`` with ``model`` into the Parquet file ``out``, resumably.

    Parameters
    ----------
    model : spec
        A :func:`~workbench.models.load_reward_model` spec. With ``engine="ray"`` it
        must be loadable on every worker (a path, hub id, ``tei:``/``vllm:``/``http:``
        URL, ``python:`` function ...), so pass a spec rather than a loaded model.
    engine : {"local", "ray"}
    cache : ScoreCache, "default" or None
        Finished scores are merged into it (and read from it, so cached texts are not
        recomputed).
    chunk_pairs : int
        Pairs read and scored at a time by the local engine (memory is bounded by it);
        also the size of the chunks the Ray driver reads.
    ray_address, workers, batch_pairs
        Ray only: the cluster to join (``None`` starts a local one), the number of CPU
        actors when the cluster has no GPUs (default: its CPU count), and the pairs in
        each actor call.
    score_kwargs
        Passed to the engine (``token_budget``, ``max_batch_size``, ``devices`` ...).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise ValueError(f"--out must be a .parquet file, got {out}")
    if cache == "default":
        cache = ScoreCache()
    start = time.perf_counter()
    manifest = {"model": _describe(model), "model_kwargs": _describe(model_kwargs or {}), "data": _describe(data)}
    parts = _Parts(out, manifest)
    done = parts.done_rows()
    result = StreamResult(out=out, engine=engine, rows_resumed=len(done))
    if engine == "local":
        rm = load_reward_model(model, **(model_kwargs or {}))
        for chunk in iter_pair_chunks(data, chunk_pairs):
            pending = chunk.loc[~chunk["_row"].isin(done)] if done else chunk
            if pending.empty:
                continue
            scored = score_pairs(rm, pending, cache=cache, progress=progress, **score_kwargs)
            frame = scored.frame
            frame.insert(0, "_row", pending["_row"].to_numpy())
            parts.write(frame)
            result.rows_scored += len(frame)
            result.texts_computed += scored.chosen_result.n_computed + scored.rejected_result.n_computed
    else:
        options = _RayOptions(
            model=model,
            model_kwargs=model_kwargs,
            chunk_pairs=chunk_pairs,
            ray_address=ray_address,
            workers=workers,
            batch_pairs=batch_pairs,
            progress=progress,
            score_kwargs=score_kwargs,
        )
        _score_with_ray(options, data, parts, done, result, cache)
    result.rows = parts.merge()
    result.seconds = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class _RayOptions:
    """How :func:`score_to_parquet` runs the Ray engine (its arguments of the same names)."""

    model: object  # a spec every worker can load
    model_kwargs: dict | None
    chunk_pairs: int  # pairs the driver reads at a time
    ray_address: str | None  # None: start a local cluster
    workers: int | None  # CPU actors when the cluster has no GPUs (None: its CPU count)
    batch_pairs: int  # pairs in each actor call
    progress: bool
    score_kwargs: dict = field(default_factory=dict)


def _score_with_ray(opts: _RayOptions, data, parts, done, result, cache) -> None:
    import ray
    import ray.data

    started = False
    if not ray.is_initialized():
        ray.init(address=opts.ray_address, include_dashboard=False, log_to_driver=opts.progress)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = opts.progress
        ctx.execution_options.preserve_order = True  # results arrive in row order: parts never overlap
        # The driver reads chunk by chunk; each goes to the object store (which spills to disk).
        refs = []
        for chunk in iter_pair_chunks(data, opts.chunk_pairs):
            pending = ~chunk["_row"].isin(done).to_numpy() if done else np.ones(len(chunk), dtype=bool)
            if pending.any():
                refs.append(ray.put(_for_workers(chunk, np.flatnonzero(pending))))
        if not refs:
            return
        resources = ray.cluster_resources()
        n_gpus = int(resources.get("GPU", 0))
        if n_gpus:
            pool = dict(concurrency=n_gpus, num_gpus=1)
        else:
            pool = dict(concurrency=opts.workers or max(1, int(resources.get("CPU", 1))), num_cpus=1)
        result.extra["actors"] = pool["concurrency"]
        result.extra["actor_device"] = "gpu" if n_gpus else "cpu"
        local_cluster = opts.ray_address is None
        cache_path = str(cache.path) if (cache is not None and local_cluster) else None
        ds = ray.data.from_pandas_refs(refs)
        scored = ds.map_batches(
            PairScorer,
            fn_constructor_kwargs=dict(
                model=opts.model, model_kwargs=opts.model_kwargs, cache_path=cache_path, score_kwargs=opts.score_kwargs
            ),
            batch_size=opts.batch_pairs,
            batch_format="pandas",
            **pool,
        )
        for frame in scored.iter_batches(batch_size=None, batch_format="pandas"):
            if frame.empty:
                continue
            _merge_into_cache(cache, frame)
            result.texts_computed += int(frame["texts_computed"].sum())
            result.rows_scored += len(frame)
            parts.write(frame.drop(columns=["chosen_key", "rejected_key", "texts_computed"]))
    finally:
        if started:
            ray.shutdown()
