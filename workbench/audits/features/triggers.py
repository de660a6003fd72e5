"""Mine word n-grams whose presence goes with higher (or lower) reward.

A reward model that has learnt a shortcut often pays for specific phrases
("absolutely right", "great question", "I hope this helps") regardless of the
rest of the response. :func:`mine_triggers` tests every word n-gram that occurs
in at least ``min_count`` texts:

* presence is binary per text (an n-gram that occurs twice in a text counts once);
* words are lower-cased runs of letters/digits joined by ``'`` or ``-``, the
  same definition as :func:`workbench.audits.features.text_features.words` (curly apostrophes
  are mapped to ``'``);
* effect sizes: difference of mean reward (with - without) with a **Welch**
  t-interval, and **Cohen's d** (difference / pooled SD with ``ddof=1``) with a
  percentile **bootstrap** interval for the reported top n-grams (texts
  resampled, ``n_boot``, ``seed``);
* **Welch's t-test** p-value (unequal variances, Welch-Satterthwaite df) and
  the **Benjamini-Hochberg** q-value over *all* tested n-grams (not only the
  reported ones), so q controls the false discovery rate of the whole scan.

N-grams are ranked by Cohen's d (``direction="higher"``: largest first;
``"lower"``: most negative first; ``"both"``: largest ``|d|``). With
``dedupe=True`` an n-gram present in exactly the same texts as a higher-ranked
one (e.g. "you're absolutely right" when it always comes with "absolutely
right") is folded into that one's ``aliases``. Presence is association, not
causation: confirm a trigger with :mod:`workbench.audits.features.perturbations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats
from sklearn.feature_extraction.text import CountVectorizer

from workbench._utils.plotting import ensure_ax
from workbench._utils.stats import bootstrap_indices, group_codes, percentile_ci
from workbench._utils.validation import as_float_array, check_ci, check_n_boot

__all__ = ["TriggerResult", "mine_triggers", "benjamini_hochberg", "TOKEN_PATTERN"]

#: Word pattern used for n-grams (see :func:`workbench.audits.features.text_features.words`).
TOKEN_PATTERN = r"\w+(?:['-]\w+)*"
_DIRECTIONS = ("higher", "lower", "both")


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN and is not counted in m.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the ``m`` finite p-values
    sorted ascending (the step-up procedure of Benjamini & Hochberg 1995).
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-d, got shape {p.shape}")
    ok = np.isfinite(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    q = np.full_like(p, np.nan)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


@dataclass
class TriggerResult:
    """Top n-grams by effect on reward; ``tested`` holds the statistics of every tested n-gram."""

    table: pd.DataFrame
    tested: pd.DataFrame
    n_texts: int
    direction: str
    n_boot: int
    ci: float
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, ax=None, *, title: str | None = None, alpha: float = 0.05):
        """Horizontal bars of Cohen's d with bootstrap CIs; bars with ``q < alpha`` are dark."""
        t = self.table.iloc[::-1]
        ax = ensure_ax(ax, (7, 0.3 * max(len(t), 3) + 1.2))
        y = np.arange(len(t))
        d = t["cohens_d"].to_numpy()
        err = np.vstack([np.nan_to_num(d - t["d_ci_low"].to_numpy()), np.nan_to_num(t["d_ci_high"].to_numpy() - d)])
        colors = ["tab:red" if q < alpha else "tab:gray" for q in t["q_value"]]
        ax.barh(y, d, xerr=err, color=colors, capsize=2)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{g!r} (n={c})" for g, c in zip(t["ngram"], t["count"])], fontsize="small")
        ax.set_xlabel(f"Cohen's d (reward with vs without)  [{int(round(100 * self.ci))}% bootstrap CI]")
        ax.set_title(title or f"Reward triggers (red: BH q < {alpha:g}; {self.n_texts} texts)")
        return ax


def _welch(n1, m1, v1, n0, m0, v0, ci):
    """Vectorised Welch t statistic, df, two-sided p and CI of m1 - m0."""
    diff = m1 - m0
    a, b = v1 / n1, v0 / n0
    se = np.sqrt(a + b)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
        t = diff / se
        p = 2.0 * stats.t.sf(np.abs(t), df)
        half = stats.t.ppf(0.5 + ci / 2.0, df) * se
    degenerate = se == 0  # both groups constant: the means are known exactly
    p = np.where(degenerate, np.where(diff == 0, 1.0, 0.0), p)
    half = np.where(degenerate, 0.0, half)
    with np.errstate(invalid="ignore"):
        t = np.where(degenerate, np.where(diff == 0, 0.0, np.sign(diff) * np.inf), t)
    return diff, t, df, p, diff - half, diff + half


def _cohens_d(n1, m1, v1, n0, m0, v0):
    pooled = np.sqrt(np.clip(((n1 - 1) * v1 + (n0 - 1) * v0) / (n1 + n0 - 2), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pooled > 0, (m1 - m0) / np.where(pooled > 0, pooled, 1.0), np.nan)


def _group_stats(s1, q1, n1, S, Q, n):
    n0 = n - n1
    m1, m0 = s1 / n1, (S - s1) / n0
    v1 = np.clip((q1 - n1 * m1**2) / (n1 - 1), 0, None)
    v0 = np.clip(((Q - q1) - n0 * m0**2) / (n0 - 1), 0, None)
    return n0, m1, m0, v1, v0


def _boot_d(presence: np.ndarray, r: np.ndarray, n_boot: int, seed: Any) -> np.ndarray:
    """Bootstrap Cohen's d for each row of ``presence`` (k, n): shape (n_boot, k)."""
    k, n = presence.shape
    out = []
    for idx in bootstrap_indices(n, n_boot, seed):
        rb = r[idx]
        rb2 = rb * rb
        S, Q = rb.sum(axis=1), rb2.sum(axis=1)
        cols = []
        for j in range(k):
            mb = presence[j][idx]
            n1 = mb.sum(axis=1).astype(float)
            s1 = (rb * mb).sum(axis=1)
            q1 = (rb2 * mb).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                n0, m1, m0, v1, v0 = _group_stats(s1, q1, n1, S, Q, n)
                d = _cohens_d(n1, m1, v1, n0, m0, v0)
            d = np.where((n1 >= 2) & (n0 >= 2), d, np.nan)
            cols.append(d)
        out.append(np.column_stack(cols))
    return np.concatenate(out) if out else np.empty((0, k))


def mine_triggers(
    texts: Sequence[str],
    rewards: Any,
    ngram_range: tuple[int, int] = (1, 3),
    min_count: int = 5,
    top_k: int = 30,
    n_boot: int = 1000,
    seed: Any = 0,
    ci: float = 0.95,
    direction: str = "higher",
    dedupe: bool = True,
    groups: Any = None,
    min_groups: int = 1,
) -> TriggerResult:
    """Rank word n-grams by how much their presence shifts the reward (see the module docstring).

    ``groups`` (one label per text, e.g. the prompt) with ``min_groups``: only
    n-grams that occur in texts of at least ``min_groups`` different groups are
    tested. A phrase seen under one prompt only cannot be told apart from that
    prompt's answer (e.g. the words of the one good answer to a prompt that
    appears in many pairs), and its texts are not independent; a shortcut
    trigger should generalise across prompts. The ``groups`` column of the
    tables is that number of groups.

    ``.to_frame()`` columns: ``rank, ngram, n_words, count`` (texts containing
    it), ``frac_texts, mean_with, mean_without, diff, diff_ci_low, diff_ci_high``
    (Welch), ``cohens_d, d_ci_low, d_ci_high`` (bootstrap), ``t, df, p_value,
    q_value, aliases`` (+ ``groups`` when ``groups`` is given).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    texts = list(texts.tolist() if isinstance(texts, pd.Series) else texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
    r = as_float_array(rewards, "rewards", len(texts))
    n = len(texts)
    try:
        lo_n, hi_n = (int(v) for v in ngram_range)
    except (TypeError, ValueError):
        raise TypeError(f"ngram_range must be a pair of ints (min_n, max_n), got {ngram_range!r}") from None
    if not 1 <= lo_n <= hi_n:
        raise ValueError(f"ngram_range must satisfy 1 <= min_n <= max_n, got {ngram_range!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 2:
        raise ValueError(f"min_count must be an int >= 2 (a group of 1 has no variance), got {min_count!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
    n_boot, ci = check_n_boot(n_boot), check_ci(ci)
    if n < 2 * min_count:
        raise ValueError(f"need at least 2 * min_count = {2 * min_count} texts, got {n}")
    if isinstance(min_groups, bool) or not isinstance(min_groups, (int, np.integer)) or min_groups < 1:
        raise ValueError(f"min_groups must be a positive int, got {min_groups!r}")
    codes = None
    if groups is not None:
        codes = group_codes(groups, n)
    elif min_groups > 1:
        raise ValueError("min_groups > 1 needs groups (one label per text)")

    columns = [
        "rank",
        "ngram",
        "n_words",
        "count",
        "frac_texts",
        "mean_with",
        "mean_without",
        "diff",
        "diff_ci_low",
        "diff_ci_high",
        "cohens_d",
        "d_ci_low",
        "d_ci_high",
        "t",
        "df",
        "p_value",
        "q_value",
        "aliases",
    ]
    notes: list[str] = []
    vec = CountVectorizer(
        lowercase=True,
        token_pattern=TOKEN_PATTERN,
        ngram_range=(lo_n, hi_n),
        binary=True,
        preprocessor=lambda s: s.lower().replace("\u2019", "'").replace("\u2018", "'"),
        min_df=int(min_count),
        max_df=n - 2,
        dtype=np.float64,
    )
    try:
        X = vec.fit_transform(texts).tocsc()
    except ValueError:  # nothing left after min_df / max_df (or no words at all)
        notes.append(f"no n-gram occurs in at least {min_count} and at most {n - 2} texts")
        return TriggerResult(pd.DataFrame(columns=columns), pd.DataFrame(), n, direction, n_boot, ci, notes)
    vocab = vec.get_feature_names_out()
    n_groups_of = None
    if codes is not None:
        onehot = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(int(codes.max()) + 1, n))
        n_groups_of = np.asarray(((onehot @ X) > 0).sum(axis=0)).ravel()
        keep_cols = np.flatnonzero(n_groups_of >= min_groups)
        if min_groups > 1:
            notes.append(
                f"{len(vocab) - len(keep_cols)} n-gram(s) occurring under fewer than {min_groups} "
                f"groups were not tested"
            )
        if len(keep_cols) == 0:
            notes.append(f"no n-gram occurs in at least {min_count} texts and {min_groups} groups")
            return TriggerResult(
                pd.DataFrame(columns=columns + ["groups"]), pd.DataFrame(), n, direction, n_boot, ci, notes
            )
        X, vocab, n_groups_of = X[:, keep_cols], vocab[keep_cols], n_groups_of[keep_cols]

    rc = r - r.mean()  # centring keeps the sum-of-squares formulas stable
    n1 = np.asarray(X.sum(axis=0)).ravel()
    s1 = X.T @ rc
    q1 = X.T @ (rc * rc)
    S, Q = rc.sum(), float(rc @ rc)
    n0, m1, m0, v1, v0 = _group_stats(s1, q1, n1, S, Q, n)
    diff, t, df, p, dlo, dhi = _welch(n1, m1, v1, n0, m0, v0, ci)
    d = _cohens_d(n1, m1, v1, n0, m0, v0)
    q = benjamini_hochberg(p)
    tested = pd.DataFrame(
        {
            "ngram": vocab,
            "n_words": [g.count(" ") + 1 for g in vocab],
            "count": n1.astype(int),
            "frac_texts": n1 / n,
            "mean_with": m1 + r.mean(),
            "mean_without": m0 + r.mean(),
            "diff": diff,
            "diff_ci_low": dlo,
            "diff_ci_high": dhi,
            "cohens_d": d,
            "t": t,
            "df": df,
            "p_value": p,
            "q_value": q,
        }
    )
    if n_groups_of is not None:
        tested["groups"] = n_groups_of.astype(int)
        columns = columns + ["groups"]
    key = {"higher": -tested["cohens_d"], "lower": tested["cohens_d"], "both": -tested["cohens_d"].abs()}[direction]
    order = tested.assign(_key=key).sort_values(["_key", "n_words", "ngram"], na_position="last").index.to_numpy()

    kept, aliases, seen = [], {}, {}
    for j in order:
        if not np.isfinite(d[j]):
            continue
        sig = X.indices[X.indptr[j] : X.indptr[j + 1]].tobytes()
        if dedupe and sig in seen:
            aliases[seen[sig]].append(vocab[j])
            continue
        seen[sig] = j
        aliases[j] = []
        kept.append(j)
        if len(kept) >= top_k:
            break
    table = tested.loc[kept].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["aliases"] = [", ".join(aliases[j]) for j in kept]
    if n_boot and kept:
        presence = np.vstack([X[:, j].toarray().ravel() for j in kept])
        blo, bhi = percentile_ci(_boot_d(presence, r, n_boot, seed), ci)
    else:
        blo = bhi = np.full(len(kept), np.nan)
    table["d_ci_low"], table["d_ci_high"] = blo, bhi
    if dedupe and any(aliases[j] for j in kept):
        notes.append("n-grams present in exactly the same texts as a higher-ranked one are listed under 'aliases'")
    return TriggerResult(table[columns], tested, n, direction, n_boot, ci, notes)
