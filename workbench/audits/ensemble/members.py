"""Ensemble members: parse and load reward models, score texts with each, train bootstrap members.

Members are any reward models :func:`workbench.models.load_reward_model` accepts
(``"demo-clean,demo-biased"``, folders, callables) or bootstrap members trained by
:func:`train_bootstrap_members`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.models import load_reward_model
from workbench.models.scoring import score_texts
from workbench.models.training import TrainingConfig, train_value_head
from workbench.paths import cache_dir, minilm_dir

__all__ = ["parse_members", "load_members", "score_matrix", "as_pair_frame", "train_bootstrap_members"]


def parse_members(models: Any) -> list:
    """``"demo-clean, demo-biased"`` -> ``["demo-clean", "demo-biased"]``; lists pass through."""
    if isinstance(models, str):
        specs = [m.strip() for m in models.split(",") if m.strip()]
    else:
        specs = list(models)
    if len(specs) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(specs)}: {models!r}")
    return specs


def load_members(models: Any, **kwargs) -> list:
    """Load every member with :func:`workbench.models.load_reward_model`; names are made unique."""
    members = [load_reward_model(m, **kwargs) for m in parse_members(models)]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        for i, m in enumerate(members):
            m.name = f"{m.name}#{i + 1}" if names.count(m.name) > 1 else m.name
    return members


def score_matrix(
    members: Sequence,
    prompts: Sequence[str],
    responses: Sequence[str],
    histories=None,
    *,
    cache="default",
    progress: bool = False,
) -> pd.DataFrame:
    """Raw scores, one column per member (named by ``member.name``), one row per text."""
    cols = {}
    for m in members:
        cols[m.name] = score_texts(m, list(prompts), list(responses), histories, cache=cache, progress=progress).scores
    return pd.DataFrame(cols)


def as_pair_frame(pairs: Any) -> pd.DataFrame:
    """The rows of a PreferenceSet or DataFrame with ``prompt``, ``chosen``, ``rejected`` (at least 2 pairs)."""
    frame = pairs.frame if hasattr(pairs, "frame") else pairs
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"pairs must be a PreferenceSet or DataFrame, got {type(pairs).__name__}")
    for col in ("prompt", "chosen", "rejected"):
        if col not in frame.columns:
            raise ValueError(f"pairs need a {col!r} column")
    if len(frame) < 2:
        raise ValueError("need at least 2 pairs")
    return frame.reset_index(drop=True)


def train_bootstrap_members(
    pairs: Any,
    k: int = 3,
    seed: int = 0,
    backbone: Any = None,
    *,
    config: Any = None,
    out_dir: Any = None,
    return_results: bool = False,
):
    """Train ``k`` value-head RMs on bootstrap resamples of ``pairs`` (rows drawn with replacement).

    Member ``j`` (``j = 1..k``) trains on ``pairs`` resampled with
    ``numpy.random.default_rng([seed, j])`` using
    :func:`workbench.models.training.train_value_head` with the frozen backbone
    (default: the shipped MiniLM, :func:`workbench.paths.minilm_dir`) and
    ``config`` (default :class:`~workbench.models.training.TrainingConfig` with
    ``seed = seed + j``). Members are named ``boot<j>-s<seed>``; with ``out_dir``
    each is saved under ``out_dir/boot<j>``. Returns the list of RMs (and the
    :class:`~workbench.models.training.TrainingResult` list with ``return_results=True``).
    Cost: one embedding pass and one head fit per member; keep ``k`` and the
    number of pairs small on CPU (k=3 on a few hundred pairs takes about a minute).
    """
    frame = as_pair_frame(pairs)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    backbone = backbone or minilm_dir()
    base = config or TrainingConfig()
    members, results = [], []
    for j in range(1, int(k) + 1):
        rng = np.random.default_rng([int(seed), j])
        idx = rng.integers(0, len(frame), len(frame))
        sample = frame.iloc[idx].reset_index(drop=True)
        cfg = TrainingConfig(**{**asdict(base), "seed": int(base.seed) + int(seed) + j})
        name = f"boot{j}-s{seed}"
        target = Path(out_dir) / f"boot{j}" if out_dir is not None else None
        # Members resample the same texts: the embedding cache embeds each text once for all of them.
        res = train_value_head(sample, backbone, target, cfg, name=name, embedding_cache=cache_dir() / "embeddings")
        res.extra["bootstrap_rows"] = idx.tolist()
        members.append(res.model)
        results.append(res)
    return (members, results) if return_results else members
