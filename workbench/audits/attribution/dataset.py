"""Dataset-level attribution: which words and phrases carry reward across many responses?

:func:`aggregate_attributions` averages word attributions over many
explanations, per word n-gram, to surface *trigger phrases* (words that raise
the reward wherever they occur). Its n-grams use exactly the word definition of
:mod:`workbench.audits.features.triggers` (lower-cased runs of letters/digits joined by
``'`` or ``-``), so :func:`compare_with_triggers` can join the two: trigger
mining says which n-grams go with higher reward across texts (association),
attribution says which n-grams the model's reward actually rests on inside each
text.

How a white-space word's attribution becomes n-gram attributions: the word is
split into its n-gram units (``"right!"`` -> ``right``; ``"e.g."`` -> ``e``,
``g``; ``"—"`` -> nothing) and its attribution is shared equally among them; an
n-gram occurrence gets the sum of its units' shares. Margin explanations are
split into their two single-score sides first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from workbench._utils.plotting import ensure_ax, mpl_text
from workbench.audits.attribution._words import AGREEMENT_WORDS, check_k, check_rank_by, normalize_words
from workbench.audits.attribution.explanation import Explanation, single_parts

__all__ = [
    "TriggerComparison",
    "aggregate_attributions",
    "compare_with_triggers",
    "hit_rates_by_group",
    "top_word_hit_rate",
    "top_word_hits",
]

_SORT = ("mean_attribution", "mean_share", "count", "n_texts")


def _units(e: Explanation) -> tuple[list[str], np.ndarray]:
    units, values = [], []
    for word, value in zip(e.words, e.word_attributions):
        parts = normalize_words(word)
        for p in parts:
            units.append(p)
            values.append(value / len(parts))
    return units, np.asarray(values, dtype=np.float64)


def aggregate_attributions(
    explanations: Sequence[Explanation],
    ngram_range: tuple[int, int] = (1, 2),
    min_count: int = 3,
    sort_by: str = "mean_attribution",
    top_k: int | None = None,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Mean attribution per word n-gram over many explanations, ranked.

    Parameters
    ----------
    explanations : sequence of Explanation
        Of one method (mixing methods mixes scales and raises a ValueError).
    ngram_range : (min_n, max_n)
        N-gram lengths (in n-gram units, see the module docstring).
    min_count : int
        Keep n-grams that occur in at least this many explanations (texts).
    sort_by : {"mean_attribution", "mean_share", "count", "n_texts"}
        Ranking column (descending).

    Returns a DataFrame with ``rank, ngram, n_words, count`` (occurrences),
    ``n_texts``, ``mean_attribution``, ``std``, ``ci_low``, ``ci_high``
    (t-interval of the mean over occurrences), ``mean_share`` (the occurrence's
    attribution divided by the sum of ``|attribution|`` of its explanation's
    words: a scale-free share) and ``frac_positive``.
    """
    parts = single_parts(explanations)
    if not parts:
        raise ValueError("no explanations to aggregate")
    methods = sorted({e.method for e in parts})
    if len(methods) > 1:
        raise ValueError(f"explanations mix methods {methods}; aggregate one method at a time")
    try:
        lo_n, hi_n = (int(v) for v in ngram_range)
    except (TypeError, ValueError):
        raise ValueError(f"ngram_range must be a pair of ints (min_n, max_n), got {ngram_range!r}") from None
    if not 1 <= lo_n <= hi_n:
        raise ValueError(f"ngram_range must satisfy 1 <= min_n <= max_n, got {ngram_range!r}")
    min_count = check_k(min_count, "min_count")
    if sort_by not in _SORT:
        raise ValueError(f"sort_by must be one of {_SORT}, got {sort_by!r}")
    if top_k is not None:
        top_k = check_k(top_k, "top_k")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")

    values: dict[str, list[float]] = {}
    shares: dict[str, list[float]] = {}
    texts: dict[str, set[int]] = {}
    for t, e in enumerate(parts):
        units, vals = _units(e)
        total = float(np.abs(e.word_attributions).sum())
        for n in range(lo_n, hi_n + 1):
            for i in range(len(units) - n + 1):
                g = " ".join(units[i : i + n])
                v = float(vals[i : i + n].sum())
                values.setdefault(g, []).append(v)
                shares.setdefault(g, []).append(v / total if total > 0 else 0.0)
                texts.setdefault(g, set()).add(t)
    rows = []
    for g, vs in values.items():
        n_texts = len(texts[g])
        if n_texts < min_count:
            continue
        v = np.asarray(vs)
        mean = float(v.mean())
        sd = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        half = float(stats.t.ppf(0.5 + ci / 2, len(v) - 1) * sd / np.sqrt(len(v))) if len(v) > 1 else float("nan")
        rows.append(
            {
                "ngram": g,
                "n_words": g.count(" ") + 1,
                "count": len(v),
                "n_texts": n_texts,
                "mean_attribution": mean,
                "std": sd,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "mean_share": float(np.mean(shares[g])),
                "frac_positive": float(np.mean(v > 0)),
            }
        )
    columns = [
        "rank",
        "ngram",
        "n_words",
        "count",
        "n_texts",
        "mean_attribution",
        "std",
        "ci_low",
        "ci_high",
        "mean_share",
        "frac_positive",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).sort_values([sort_by, "ngram"], ascending=[False, True], kind="mergesort")
    frame = frame.reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame.attrs["method"] = methods[0]
    frame.attrs["n_explanations"] = len(parts)
    return frame.head(top_k).reset_index(drop=True) if top_k else frame


def top_word_hits(
    explanations: Sequence[Explanation], vocabulary: Sequence[str] = AGREEMENT_WORDS, k: int = 5, by: str = "value"
) -> np.ndarray:
    """For each explanation: is one of its top-``k`` words (after :func:`normalize_words`) in ``vocabulary``?"""
    k = check_k(k)
    check_rank_by(by)
    if isinstance(vocabulary, str):
        raise TypeError("vocabulary must be a sequence of words, not a single string")
    vocab = {w.lower() for w in vocabulary}
    out = []
    for e in single_parts(explanations):
        top = [e.words[i] for i in e.ranking(by)[:k]]
        out.append(any(u in vocab for w in top for u in normalize_words(w)))
    return np.asarray(out, dtype=bool)


def top_word_hit_rate(
    explanations: Sequence[Explanation], vocabulary: Sequence[str] = AGREEMENT_WORDS, k: int = 5, by: str = "value"
) -> float:
    """Share of explanations with a ``vocabulary`` word among their top-``k`` words (the known-answer measure)."""
    hits = top_word_hits(explanations, vocabulary, k, by)
    return float(hits.mean()) if len(hits) else float("nan")


def hit_rates_by_group(
    explanations_by_method: Mapping[str, Sequence[Explanation]],
    groups: Mapping[str, np.ndarray],
    vocabulary: Sequence[str] = AGREEMENT_WORDS,
    k: int = 5,
    by: str = "value",
) -> pd.DataFrame:
    """:func:`top_word_hit_rate` per method and group of responses.

    ``groups`` maps a label to a boolean mask over the explanations (the same
    order for every method). One row per (method, group): ``method``,
    ``responses`` (the label), ``n`` and ``agreement word in top {k}`` (NaN for
    an empty group).
    """
    rows = []
    for name, exps in explanations_by_method.items():
        for label, sel in groups.items():
            chosen = [e for e, s in zip(exps, sel) if s]
            rows.append(
                {
                    "method": name,
                    "responses": label,
                    "n": len(chosen),
                    f"agreement word in top {k}": top_word_hit_rate(chosen, vocabulary, k=k, by=by)
                    if chosen
                    else np.nan,
                }
            )
    return pd.DataFrame(rows)


@dataclass
class TriggerComparison:
    """Attribution-based phrase ranking joined with trigger-mining statistics.

    ``table``: the aggregated n-grams with the trigger-mining columns
    ``trigger_count, cohens_d, diff, q_value`` (from every tested n-gram) and
    ``trigger_rank`` (rank among the reported triggers, aliases included; NaN if
    not reported). ``triggers``: the reported triggers with the attribution
    columns ``attr_rank, mean_attribution, n_texts_explained``. ``spearman``:
    rank correlation of mean attribution and Cohen's d over the n-grams present
    in both (``n_common``); ``shared``: n-grams in the top ``k`` of both rankings;
    ``overlap = len(shared) / k`` (k capped by the shorter list).
    """

    table: pd.DataFrame
    triggers: pd.DataFrame
    spearman: float
    spearman_p: float
    n_common: int
    k: int
    shared: list = field(default_factory=list)
    overlap: float = float("nan")

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> dict:
        return {
            "n_common": self.n_common,
            "spearman": self.spearman,
            "spearman_p": self.spearman_p,
            f"top_{self.k}_overlap": self.overlap,
            "shared": ", ".join(self.shared),
        }

    def plot(self, ax=None, label_top: int = 8, title: str | None = None):
        """Scatter of mean attribution vs Cohen's d; the top n-grams by attribution are labelled."""
        ax = ensure_ax(ax, (6, 4))
        t = self.table[np.isfinite(self.table["cohens_d"].astype(float))]
        reported = t["trigger_rank"].notna()
        ax.scatter(
            t.loc[~reported, "cohens_d"],
            t.loc[~reported, "mean_attribution"],
            s=12,
            color="tab:gray",
            alpha=0.6,
            label="tested n-gram",
        )
        ax.scatter(
            t.loc[reported, "cohens_d"],
            t.loc[reported, "mean_attribution"],
            s=24,
            color="tab:red",
            label="reported trigger",
        )
        for r in t.sort_values("mean_attribution", ascending=False).head(label_top).itertuples():
            ax.annotate(
                mpl_text(r.ngram),
                (r.cohens_d, r.mean_attribution),
                fontsize="x-small",
                xytext=(3, 2),
                textcoords="offset points",
            )
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("trigger mining: Cohen's d (reward with vs without)")
        ax.set_ylabel("mean attribution per occurrence")
        ax.set_title(title or f"Attribution vs trigger mining (Spearman {self.spearman:.2f}, n={self.n_common})")
        ax.legend(fontsize="small")
        return ax


def _trigger_tables(trigger_result) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(trigger_result, pd.DataFrame):
        reported = trigger_result.copy()
        tested = reported
    elif hasattr(trigger_result, "to_frame"):
        reported = trigger_result.to_frame()
        tested = getattr(trigger_result, "tested", None)
        tested = reported if tested is None or len(tested) == 0 else tested
    else:
        raise TypeError(f"trigger_result must be a TriggerResult or a DataFrame, got {type(trigger_result).__name__}")
    for name, frame in (("trigger table", reported), ("tested n-grams", tested)):
        if "ngram" not in frame.columns:
            raise ValueError(f"{name} has no 'ngram' column (columns: {list(frame.columns)})")
    return reported.reset_index(drop=True), tested


def compare_with_triggers(agg: pd.DataFrame, trigger_result, k: int = 20) -> TriggerComparison:
    """Join :func:`aggregate_attributions` output with :func:`workbench.audits.features.triggers.mine_triggers` results.

    ``trigger_result`` is a ``TriggerResult`` (its ``tested`` table gives the
    statistics of every tested n-gram, its ``to_frame()`` the reported
    triggers) or any DataFrame with an ``ngram`` column (and optionally
    ``cohens_d``, ``diff``, ``q_value``, ``count``, ``aliases``).
    """
    if not isinstance(agg, pd.DataFrame) or not {"ngram", "mean_attribution"} <= set(agg.columns):
        raise ValueError("agg must be the DataFrame returned by aggregate_attributions (ngram, mean_attribution, ...)")
    k = check_k(k)
    reported, tested = _trigger_tables(trigger_result)
    reported = reported.copy()
    reported["ngram"] = reported["ngram"].astype(str).str.lower()
    if "rank" not in reported.columns:
        reported["rank"] = np.arange(1, len(reported) + 1)
    # Every reported n-gram and its aliases map to the reported rank.
    rank_of: dict[str, int] = {}
    for r in reported.itertuples():
        rank_of.setdefault(r.ngram, int(r.rank))
        aliases = getattr(r, "aliases", "") if "aliases" in reported.columns else ""
        for alias in str(aliases or "").split(","):
            if alias.strip():
                rank_of.setdefault(alias.strip().lower(), int(r.rank))
    stats_cols = [c for c in ("count", "cohens_d", "diff", "q_value") if c in tested.columns]
    t = tested[["ngram", *stats_cols]].copy()
    t["ngram"] = t["ngram"].astype(str).str.lower()
    t = t.drop_duplicates("ngram").rename(columns={"count": "trigger_count"})
    table = agg.copy()
    table["ngram"] = table["ngram"].astype(str)
    table = table.merge(t, on="ngram", how="left")
    for col in ("trigger_count", "cohens_d", "diff", "q_value"):
        if col not in table.columns:
            table[col] = np.nan
    table["trigger_rank"] = table["ngram"].map(rank_of).astype(float)

    both = table[np.isfinite(table["cohens_d"].astype(float)) & np.isfinite(table["mean_attribution"].astype(float))]
    rho = p = float("nan")
    if len(both) >= 3 and both["cohens_d"].nunique() > 1 and both["mean_attribution"].nunique() > 1:
        res = stats.spearmanr(both["mean_attribution"], both["cohens_d"])
        rho, p = float(res.statistic), float(res.pvalue)

    attr_top = list(agg.sort_values("mean_attribution", ascending=False)["ngram"].astype(str).head(k))
    trig_top = set()
    for r in reported.sort_values("rank").head(k).itertuples():
        trig_top.add(r.ngram)
        aliases = getattr(r, "aliases", "") if "aliases" in reported.columns else ""
        trig_top.update(a.strip().lower() for a in str(aliases or "").split(",") if a.strip())
    shared = [g for g in attr_top if g in trig_top]
    denom = min(k, len(attr_top), min(k, len(reported)))
    overlap = len(shared) / denom if denom else float("nan")

    attr_index = agg.set_index(agg["ngram"].astype(str))
    trig = reported.copy()
    trig["attr_rank"] = trig["ngram"].map(attr_index["rank"] if "rank" in attr_index else {}).astype(float)
    trig["mean_attribution"] = trig["ngram"].map(attr_index["mean_attribution"]).astype(float)
    trig["n_texts_explained"] = (
        trig["ngram"].map(attr_index["n_texts"] if "n_texts" in attr_index else {}).astype(float)
    )
    return TriggerComparison(table, trig, rho, p, int(len(both)), k, shared, overlap)
