"""Trigger phrases across checkpoints: lexicon and phrase frequencies, emerging n-grams, per-answer hits.

* :func:`trigger_frequency`: the share of responses with each phrase (or phrase
  group) per checkpoint, with a chi-square test of homogeneity across checkpoints;
* :func:`emerging_phrases`: the word n-grams whose share grows most from one
  checkpoint to another (Fisher exact test, Benjamini-Hochberg q-values), with the
  RM's reward for responses with vs without them;
* :func:`select_phrases`: the phrases to track (given by the user, or the rising
  phrases the RM rewards most);
* :func:`trigger_hits`: lexicon plus phrase hits in one answer (ranks the relabel queue).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.feature_extraction.text import CountVectorizer

from workbench._utils.plotting import ensure_ax
from workbench.audits.drift.samples import checkpoint_labels, order_checkpoints, sample_steps
from workbench.audits.features.text_features import agreement_count, count_phrases, flattery_count, hedge_count
from workbench.audits.features.triggers import TOKEN_PATTERN, benjamini_hochberg

__all__ = [
    "TriggerFrequency",
    "trigger_frequency",
    "emerging_phrases",
    "select_phrases",
    "trigger_hits",
    "EMERGING_Q",
    "N_TRACKED",
]

#: q-value below which a rising n-gram counts as emerging (:func:`select_phrases`)
EMERGING_Q = 0.05
#: how many emerging phrases :func:`select_phrases` tracks
N_TRACKED = 6


def _phrase_counters(phrases: Any) -> dict[str, Callable[[str], int]]:
    if phrases is None:
        return {"agreement": agreement_count, "flattery": flattery_count, "hedges": hedge_count}
    if hasattr(phrases, "table") and hasattr(phrases, "tested"):  # a TriggerResult
        phrases = phrases.table["ngram"].tolist()
    if isinstance(phrases, str):
        phrases = [phrases]
    if isinstance(phrases, Mapping):
        out = {}
        for name, group in phrases.items():
            if callable(group):
                out[str(name)] = group
            else:
                group = [group] if isinstance(group, str) else list(group)
                if not group or not all(isinstance(p, str) and p.strip() for p in group):
                    raise ValueError(f"phrases[{name!r}] must be a non-empty list of non-empty strings")
                out[str(name)] = (lambda g: lambda text: count_phrases(text, g))(tuple(group))
        return out
    phrases = list(phrases)
    if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
        raise ValueError(
            "phrases must be a non-empty list of non-empty strings, a mapping name -> phrases, or a TriggerResult"
        )
    return {p: (lambda ph: lambda text: count_phrases(text, (ph,)))(p) for p in dict.fromkeys(phrases)}


@dataclass
class TriggerFrequency:
    """Share of responses containing each trigger phrase (or phrase group) per checkpoint."""

    table: pd.DataFrame
    tests: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def wide(self, value: str = "share") -> pd.DataFrame:
        """Checkpoints as rows, phrases as columns."""
        w = self.table.pivot_table(index=["checkpoint_order", "checkpoint"], columns="phrase", values=value, sort=False)
        w = w.reset_index(level=0, drop=True)
        w.columns.name = None
        return w

    def plot(self, ax=None, top: int = 8):
        """Share of responses with each phrase vs step (the ``top`` phrases with the largest change)."""
        ax = ensure_ax(ax, (6.5, 3.8))
        tests = self.tests.sort_values("change", key=np.abs, ascending=False).head(top)
        t = self.table
        use_step = t["step"].notna().all()
        for ph in tests["phrase"]:
            d = t[t["phrase"] == ph].sort_values("checkpoint_order")
            x = d["step"].to_numpy(dtype=float) if use_step else d["checkpoint_order"].to_numpy()
            ax.plot(x, d["share"], marker="o", label=str(ph)[:40])
        ax.set_xlabel("step" if use_step else "checkpoint")
        ax.set_ylabel("share of responses")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize="small")
        ax.set_title("Trigger phrases per checkpoint")
        return ax.figure


def trigger_frequency(responses: Any, checkpoints: Any, phrases: Any = None, steps: Any = None) -> TriggerFrequency:
    """Count trigger phrases per checkpoint.

    ``phrases`` may be ``None`` (the lexicon counters of
    :mod:`workbench.audits.features.text_features`: agreement, flattery, hedges), a list of
    phrases, a mapping ``name -> list of phrases`` (a group counts any of them)
    or ``name -> callable(text) -> count``, or a
    :class:`~workbench.audits.features.triggers.TriggerResult` (its mined n-grams).
    Phrases match case-insensitively at word boundaries
    (:func:`workbench.audits.features.text_features.count_phrases`).

    ``table`` columns: ``checkpoint, step, checkpoint_order, phrase, n, n_with,
    share, mean_count``. ``tests`` has one row per phrase: share at the first and
    last checkpoint, their ``change`` and the chi-square test of homogeneity of
    the share across checkpoints (``scipy.stats.chi2_contingency``; NaN when the
    phrase never or always occurs).
    """
    if isinstance(responses, str):
        raise TypeError("responses must be a sequence of strings, not a single string")
    resp = list(responses)
    for i, r in enumerate(resp):
        if not isinstance(r, str):
            raise TypeError(f"responses[{i}] is {type(r).__name__}, expected str")
    ck = checkpoint_labels(checkpoints, "checkpoints", len(resp))
    st = sample_steps(steps, len(resp))
    order, step_of = order_checkpoints(ck, st)
    counters = _phrase_counters(phrases)
    counts = {name: np.array([fn(r) for r in resp], dtype=float) for name, fn in counters.items()}
    rows, tests = [], []
    for name, cnt in counts.items():
        table = []
        for j, c in enumerate(order):
            m = ck == c
            n, k = int(m.sum()), int((cnt[m] > 0).sum())
            rows.append(
                {
                    "checkpoint": c,
                    "step": step_of.get(c, np.nan),
                    "checkpoint_order": j,
                    "phrase": name,
                    "n": n,
                    "n_with": k,
                    "share": k / n,
                    "mean_count": float(cnt[m].mean()),
                }
            )
            table.append([k, n - k])
        tab = np.array(table)
        p = float("nan")
        if tab[:, 0].sum() > 0 and tab[:, 1].sum() > 0 and len(order) > 1:
            p = float(stats.chi2_contingency(tab, correction=False).pvalue)
        first, last = tab[0, 0] / tab[0].sum(), tab[-1, 0] / tab[-1].sum()
        tests.append({"phrase": name, "share_first": first, "share_last": last, "change": last - first, "chi2_p": p})
    t = pd.DataFrame(rows)
    if st is None:
        t["step"] = pd.array([pd.NA] * len(t), dtype="Int64")
    return TriggerFrequency(t, pd.DataFrame(tests))


def emerging_phrases(
    responses: Any,
    checkpoints: Any,
    rewards: Any = None,
    *,
    steps: Any = None,
    reference: str | None = None,
    current: str | None = None,
    ngram_range: tuple[int, int] = (1, 3),
    min_count: int = 5,
    top_k: int = 15,
) -> pd.DataFrame:
    """Word n-grams whose share of responses grows most from ``reference`` to ``current``.

    Words follow :data:`workbench.audits.features.triggers.TOKEN_PATTERN` (lower-cased,
    curly apostrophes mapped to ``'``); presence is binary per response and an
    n-gram is tested when it occurs in at least ``min_count`` responses of the
    two checkpoints together. Each gets a two-sided Fisher exact test of equal
    shares (``scipy.stats.fisher_exact``) and a Benjamini-Hochberg ``q_value``
    over all tested n-grams. N-grams present in exactly the same responses as a
    higher-ranked one are folded into its ``aliases``. With ``rewards`` (one per
    response, all checkpoints), ``reward_with``/``reward_without``/``cohens_d``
    say whether the RM pays for the phrase (over all responses; pooled SD,
    ``ddof=1``). Rows are sorted by ``change`` (largest rise first); the top
    ``top_k`` are returned.
    """
    if isinstance(responses, str):
        raise TypeError("responses must be a sequence of strings, not a single string")
    resp = [str(r) if isinstance(r, str) else None for r in responses]
    if any(r is None for r in resp):
        raise TypeError("every response must be a string")
    ck = checkpoint_labels(checkpoints, "checkpoints", len(resp))
    st = sample_steps(steps, len(resp))
    order, _ = order_checkpoints(ck, st)
    reference = order[0] if reference is None else str(reference)
    current = order[-1] if current is None else str(current)
    for name in (reference, current):
        if name not in order:
            raise ValueError(f"checkpoint {name!r} not found; checkpoints: {order}")
    if reference == current:
        raise ValueError("reference and current must be different checkpoints")
    r = None if rewards is None else np.asarray(rewards, dtype=float).reshape(-1)
    if r is not None and r.size != len(resp):
        raise ValueError(f"rewards has {r.size} entries for {len(resp)} responses")
    ia, ib = np.flatnonzero(ck == reference), np.flatnonzero(ck == current)
    sub = [resp[i] for i in np.r_[ia, ib]]
    cols = [
        "ngram",
        "share_ref",
        "share_cur",
        "change",
        "n_ref",
        "n_cur",
        "p_value",
        "q_value",
        "reward_with",
        "reward_without",
        "cohens_d",
        "aliases",
    ]
    vec = CountVectorizer(
        lowercase=True,
        token_pattern=TOKEN_PATTERN,
        ngram_range=tuple(ngram_range),
        binary=True,
        preprocessor=lambda s: s.lower().replace("\u2019", "'").replace("\u2018", "'"),
        min_df=int(min_count),
    )
    try:
        X = vec.fit_transform(sub).tocsc()
    except ValueError:
        return pd.DataFrame(columns=cols)
    vocab = vec.get_feature_names_out()
    na, nb = ia.size, ib.size
    ka = np.asarray(X[:na].sum(0)).ravel().astype(int)
    kb = np.asarray(X[na:].sum(0)).ravel().astype(int)
    p = np.array([stats.fisher_exact([[b, nb - b], [a, na - a]]).pvalue for a, b in zip(ka, kb)])
    q = benjamini_hochberg(p)
    change = kb / nb - ka / na
    ranked = sorted(range(len(vocab)), key=lambda j: (-change[j], p[j], vocab[j].count(" "), vocab[j]))
    kept, aliases, seen = [], {}, {}
    for j in ranked:
        sig = X.indices[X.indptr[j] : X.indptr[j + 1]].tobytes()
        if sig in seen:
            aliases[seen[sig]].append(vocab[j])
            continue
        seen[sig] = j
        aliases[j] = []
        kept.append(j)
        if len(kept) >= top_k:
            break
    out = pd.DataFrame(
        {
            "ngram": vocab[kept],
            "share_ref": ka[kept] / na,
            "share_cur": kb[kept] / nb,
            "change": change[kept],
            "n_ref": na,
            "n_cur": nb,
            "p_value": p[kept],
            "q_value": q[kept],
        }
    )
    if r is not None:
        pres = vec.transform(resp)[:, kept].toarray() > 0
        with_, without, d = [], [], []
        for j in range(len(kept)):
            x1, x0 = r[pres[:, j]], r[~pres[:, j]]
            with_.append(x1.mean() if x1.size else np.nan)
            without.append(x0.mean() if x0.size else np.nan)
            if x1.size > 1 and x0.size > 1:
                sp = math.sqrt(
                    ((x1.size - 1) * x1.var(ddof=1) + (x0.size - 1) * x0.var(ddof=1)) / (x1.size + x0.size - 2)
                )
                d.append((x1.mean() - x0.mean()) / sp if sp > 0 else np.nan)
            else:
                d.append(np.nan)
        out["reward_with"], out["reward_without"], out["cohens_d"] = with_, without, d
    else:
        out["reward_with"] = out["reward_without"] = out["cohens_d"] = np.nan
    out["aliases"] = [", ".join(aliases[j]) for j in kept]
    return out[cols]


def select_phrases(emerging: pd.DataFrame, phrases: str | Sequence[str] = "") -> tuple[list[str], str]:
    """The phrases to track and a label for the plot.

    ``phrases`` given (a comma-separated string or a list): those. Otherwise the
    rising n-grams of :func:`emerging_phrases` (``q_value < 0.05`` and ``change > 0``)
    that the RM rewards most (largest ``cohens_d``), at most six.
    """
    if isinstance(phrases, str):
        phrases = phrases.split(",") if phrases.strip() else []
    if phrases:
        return [p.strip() for p in phrases if p.strip()], "phrases from the trigger_phrases parameter"
    rising = emerging[(emerging["q_value"] < EMERGING_Q) & (emerging["change"] > 0)]
    chosen = rising.sort_values("cohens_d", ascending=False)["ngram"].head(N_TRACKED).tolist()
    return chosen, "rising phrases the RM rewards most (q < 0.05)"


def trigger_hits(text: str, phrases: Sequence[str] = ()) -> int:
    """Agreement plus flattery lexicon hits in ``text``, plus the hits of ``phrases`` (if any)."""
    return agreement_count(text) + flattery_count(text) + (count_phrases(text, phrases) if phrases else 0)
