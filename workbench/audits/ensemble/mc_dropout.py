"""Monte Carlo dropout: uncertainty of one transformer RM without an ensemble.

Dropout is kept on at inference and every text is scored ``passes`` times (Gal and
Ghahramani, 2016). What is switched on, exactly:

* every ``torch.nn.Dropout`` module of the RM (backbone and head) goes to train mode;
  every other module stays in eval mode (LayerNorm, BatchNorm, ...), and each module's
  mode (and dropout rate) is restored afterwards, also when scoring fails
  (:func:`stochastic_mode`);
* dropout that transformers applies *functionally*, reading the training flag of the
  parent module, stays off: in recent transformers this is the dropout of the attention
  probabilities (BERT/MiniLM ``attention_probs_dropout_prob``), so the passes vary the
  hidden-state dropout (``hidden_dropout_prob``) only;
* ``dropout=None`` keeps each module's own rate (the demo RMs: the frozen MiniLM's
  ``hidden_dropout_prob = 0.1``); a number sets every dropout module to that rate for the
  passes (use it for an RM saved with rate 0, or to study the rate). An RM with no dropout
  module, or rate 0 everywhere, gives zero spread; the result says so in its notes.

Pass ``k`` runs with the torch generator seeded from ``(seed, k)`` (the global RNG state
is restored afterwards), so a call is reproducible. A stochastic score depends on the
batch it was computed in (the dropout masks are drawn per batch), so it is a draw from
the same distribution whatever the batching, not a function of the text alone. Scores of
pass ``k`` are cached under their own key (:func:`mc_variant`: method version, ``seed``,
``k`` and the dropout rates, folded into :func:`workbench.models.cache.score_key`), never
mixed with the deterministic scores or with another pass; a repeated call is served from
the cache.

Per pair (:func:`mc_dropout_pairs`): the deterministic margin (dropout off) and whether it
ranks the pair against the label (a *mistake*; human ties and zero margins excluded), the
mean over passes of the margin, its spread (``margin_sd``: sample SD, ``ddof=1``, over
passes) and each response's reward SD. The **spread AUROC** is
``sklearn.metrics.roc_auc_score(mistake, margin_sd)``: 0.5 means the spread carries no
information about the RM's errors. Shown next to it: the **sign-flip rate** (share of passes
whose margin has the other sign than the deterministic one), which mixes the spread with the
margin's size, and the reference ``-|margin|`` (the deterministic margin's size alone, no
passes): when the spread adds little beyond the margin, the flip rate's AUROC is close to the
reference's. The **flip probability** is the same quantity from a normal approximation of the
passes' margins, ``Phi(-|mean_margin| / margin_sd)`` (:func:`flip_probability`): the
probability that a pass ranks the pair the other way, continuous even with few passes (the
flip rate of 4 passes takes 5 values). Intervals are percentile bootstraps over clusters of pairs (topic / group /
prompt id, else the normalised prompt: :func:`workbench._utils.stats.cluster_labels`). Given an :class:`EnsembleResult` on the same
pairs (matched by ``id``), the ensemble's disagreement (``std_margin``) is scored for the
same mistakes on the same resampled clusters, with the paired difference.

**High-reward, high-uncertainty responses**: deterministic reward in the top quartile of
all scored responses and reward SD in the top quartile (``reward_quantile``,
``spread_quantile``); where a policy optimising this RM can exploit its ignorance. Their
pairs go to the relabel queue (:meth:`MCDropoutResult.relabel_candidates`, the format of
:func:`workbench.data.relabel.export_relabel_queue`).

The result is descriptive: :meth:`MCDropoutResult.verdicts` grades nothing.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._utils.plotting import error_histogram, panel_axes
from workbench._utils.stats import bootstrap_weights, cluster_labels, percentile_ci
from workbench._utils.validation import check_ci, check_n_boot
from workbench.audits.ensemble.aggregation import disagreement_auroc, weighted_auroc
from workbench.audits.ensemble.audit import EnsembleResult
from workbench.audits.ensemble.members import as_pair_frame
from workbench.audits.result import AuditResult
from workbench.data.preferences import PreferenceSet
from workbench.data.shipped import load_data
from workbench.models.adapters import TransformerRM
from workbench.models.formatting import Message
from workbench.models.loading import load_reward_model
from workbench.models.scoring import score_texts
from workbench.reports.verdicts import Verdict

__all__ = [
    "MC_DROPOUT_VERSION",
    "MCDropoutScores",
    "MCDropoutResult",
    "dropout_modules",
    "stochastic_mode",
    "pass_seed",
    "mc_variant",
    "mc_dropout_scores",
    "flip_probability",
    "mc_dropout_pairs",
    "mc_dropout_audit",
]

#: part of every stochastic cache key; bump it when the way passes are computed changes
MC_DROPOUT_VERSION = "mc-dropout-v1"


def _torch_modules(rm: TransformerRM) -> list:
    """The torch modules an RM scores with (backbone, and a value head where there is one)."""
    import torch

    rm.load_weights()
    roots = [v for v in vars(rm).values() if isinstance(v, torch.nn.Module)]
    return list({id(m): m for m in roots}.values())


def _check_rm(rm: Any) -> TransformerRM:
    rm = load_reward_model(rm)
    if not isinstance(rm, TransformerRM):
        raise TypeError(
            f"MC dropout needs a transformer RM whose dropout layers can be switched on (SequenceClassifierRM "
            f"or ValueHeadRM); {rm.name!r} is a {type(rm).__name__}. Load a model folder or hub id instead, "
            "or use an ensemble of RMs for uncertainty (workbench.audits.ensemble.ensemble_audit)"
        )
    return rm


def _check_dropout(dropout: Any) -> float | None:
    if dropout is None:
        return None
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be None (each layer's own rate) or a rate in [0, 1), got {dropout!r}")
    return float(dropout)


def _check_passes(passes: Any) -> int:
    if isinstance(passes, bool) or not isinstance(passes, numbers.Integral) or passes < 2:
        raise ValueError(f"passes must be an integer >= 2 (the spread needs two passes), got {passes!r}")
    return int(passes)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def dropout_modules(rm: Any) -> list:
    """The ``torch.nn.Dropout`` modules of a transformer RM (loads its weights)."""
    import torch

    rm = _check_rm(rm)
    return [m for root in _torch_modules(rm) for m in root.modules() if isinstance(m, torch.nn.Dropout)]


@contextmanager
def stochastic_mode(rm: Any, dropout: float | None = None):
    """Within the block, the RM's ``torch.nn.Dropout`` modules are in train mode, everything else in eval mode.

    ``dropout`` (a rate in ``[0, 1)``) overrides every dropout module's rate. Yields the sorted
    distinct rates in effect. On exit, also after an error, every module's mode and rate is restored.
    """
    import torch

    rm = _check_rm(rm)
    dropout = _check_dropout(dropout)
    modules = [m for root in _torch_modules(rm) for m in root.modules()]
    modes = [(m, m.training) for m in modules]
    drops = [m for m in modules if isinstance(m, torch.nn.Dropout)]
    rates = [(m, m.p) for m in drops]
    try:
        for m in modules:
            m.training = False  # .eval() on each module, without recursing twice
        for m in drops:
            m.training = True
            if dropout is not None:
                m.p = dropout
        yield sorted({float(m.p) for m in drops})
    finally:
        for m, p in rates:
            m.p = p
        for m, mode in modes:
            m.training = mode


def pass_seed(seed: int, k: int) -> int:
    """The torch seed of pass ``k``: derived from ``(seed, k)`` by :class:`numpy.random.SeedSequence`."""
    return int(np.random.SeedSequence([_check_seed(seed), int(k)]).generate_state(1, np.uint64)[0] >> 1)


def mc_variant(seed: int, k: int, rates: Sequence[float]) -> str:
    """The score-cache variant of pass ``k``: method version, seed, pass index and dropout rates."""
    return f"{MC_DROPOUT_VERSION};seed={int(seed)};pass={int(k)};dropout={','.join(f'{r:g}' for r in rates)}"


@dataclass
class MCDropoutScores:
    """Rewards of ``n`` texts in ``passes`` stochastic passes (``rewards``: ``passes x n``)."""

    rewards: np.ndarray
    seed: int
    rates: list[float]
    n_dropout_modules: int
    n_cached: list[int]  # per pass: texts served from the score cache
    n_computed: list[int]  # per pass: texts computed
    model: dict = field(default_factory=dict)

    @property
    def passes(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def mean(self) -> np.ndarray:
        return self.rewards.mean(0)

    @property
    def sd(self) -> np.ndarray:
        """Sample SD (``ddof=1``) of each text's reward over passes."""
        return self.rewards.std(0, ddof=1)

    @property
    def dropout_active(self) -> bool:
        return any(r > 0 for r in self.rates)


def mc_dropout_scores(
    rm: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    histories: Sequence[Sequence[Message] | None] | None = None,
    *,
    passes: int = 8,
    seed: int = 0,
    dropout: float | None = None,
    cache="default",
    progress: bool = False,
    token_budget: int | None = None,
) -> MCDropoutScores:
    """Score ``(prompt, response)`` pairs ``passes`` times with dropout on (see the module docstring).

    ``rm`` is anything :func:`~workbench.models.loading.load_reward_model` accepts that
    loads a transformer RM. Each pass is one call of the scoring engine
    (:func:`~workbench.models.scoring.score_texts`) with the cache variant :func:`mc_variant`.
    """
    import torch

    rm = _check_rm(rm)
    passes, seed, dropout = _check_passes(passes), _check_seed(seed), _check_dropout(dropout)
    n_modules = len(dropout_modules(rm))
    device = torch.device(rm.device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    rows, cached, computed = [], [], []
    with stochastic_mode(rm, dropout) as rates:
        for k in range(passes):
            with torch.random.fork_rng(devices=fork_devices):
                torch.manual_seed(pass_seed(seed, k))
                result = score_texts(
                    rm,
                    prompts,
                    responses,
                    histories,
                    cache=cache,
                    progress=progress,
                    desc=f"MC dropout pass {k + 1}/{passes}",
                    token_budget=token_budget,
                    variant=mc_variant(seed, k, rates),
                )
            rows.append(result.scores)
            cached.append(result.n_cached)
            computed.append(result.n_computed)
    return MCDropoutScores(np.vstack(rows), seed, list(rates), n_modules, cached, computed, rm.describe())


def _mistakes(margin: np.ndarray, label: np.ndarray) -> np.ndarray:
    """1 where the margin ranks the pair against the label, 0 where with it, NaN for human or model ties."""
    decided = (label != 0.5) & (margin != 0)
    return np.where(decided, ((margin > 0) != (label > 0.5)).astype(float), np.nan)


@dataclass
class MCDropoutResult(AuditResult):
    """MC-dropout uncertainty of one RM on preference pairs (see the module docstring).

    ``items``: one row per pair (``id, prompt, chosen, rejected, label``, the deterministic
    ``chosen_reward, rejected_reward, margin``, the pass statistics ``mean_margin, margin_sd,
    chosen_reward_mean, chosen_reward_sd, rejected_reward_mean, rejected_reward_sd, flip_rate,
    flip_probability``
    and ``mistake``). ``responses``: one row per scored response (``id, side, prompt, response,
    reward, reward_mean, reward_sd, flagged``). ``signals``: AUROC of the spread (``auroc``,
    ``auroc_ci``), the sign-flip rate, the flip probability and the ``-|margin|`` reference for
    the RM's mistakes.
    ``comparison``: the spread AUROC next to the ensemble's on the common pairs, and their
    paired difference (empty without an ensemble).
    """

    section: ClassVar[str] = "mc_dropout"

    items: pd.DataFrame
    responses: pd.DataFrame
    auroc: float
    auroc_ci: tuple[float, float]
    comparison: pd.DataFrame
    signals: pd.DataFrame
    passes: int
    seed: int
    rates: list[float]
    n_dropout_modules: int
    reward_threshold: float
    spread_threshold: float
    model: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ci: float = 0.95
    n_boot: int = 1000
    cluster_unit: str = "pair"
    n_clusters: int = 0
    n_cached: int = 0
    n_computed: int = 0
    source: str = ""

    def to_frame(self) -> pd.DataFrame:
        """AUROC of each signal for the RM's mistakes, with intervals: the spread (first row), the
        sign-flip rate, the deterministic reference ``-|margin|`` and, with an ensemble, the ensemble's
        disagreement on the shared pairs and the paired difference."""
        return pd.concat([self.signals, self.comparison], ignore_index=True)

    def summary(self) -> dict:
        it = self.items
        out = {
            "n_pairs": int(len(it)),
            "passes": self.passes,
            "seed": self.seed,
            "dropout_rates": ",".join(f"{r:g}" for r in self.rates),
            "n_dropout_modules": self.n_dropout_modules,
            "n_mistakes": int((it["mistake"] == 1).sum()),
            "mean_margin_sd": float(it["margin_sd"].mean()),
            "mean_reward_sd": float(self.responses["reward_sd"].mean()),
            "auroc_spread_vs_mistake": self.auroc,
            "auroc_spread_vs_mistake_low": self.auroc_ci[0],
            "auroc_spread_vs_mistake_high": self.auroc_ci[1],
            "auroc_flip_rate_vs_mistake": float(self.signals["auroc"].iloc[1]),
            "auroc_flip_probability_vs_mistake": float(self.signals["auroc"].iloc[2]),
            "auroc_flip_probability_vs_mistake_low": float(self.signals["ci_low"].iloc[2]),
            "auroc_flip_probability_vs_mistake_high": float(self.signals["ci_high"].iloc[2]),
            "auroc_small_margin_vs_mistake": float(self.signals["auroc"].iloc[3]),
            "n_flagged_responses": int(self.responses["flagged"].sum()),
            "n_clusters": self.n_clusters,
            "cluster_unit": self.cluster_unit,
            "texts_from_cache": self.n_cached,
            "texts_computed": self.n_computed,
        }
        for _, r in self.comparison.iterrows():
            if r["signal"].startswith("ensemble"):
                out["auroc_ensemble_vs_mistake"] = float(r["auroc"])
            elif r["signal"].startswith("difference"):
                out["auroc_difference"], out["auroc_difference_low"], out["auroc_difference_high"] = (
                    float(r["auroc"]),
                    float(r["ci_low"]),
                    float(r["ci_high"]),
                )
        return out

    def verdicts(self) -> list[Verdict]:
        """Nothing is graded: MC-dropout uncertainty is descriptive."""
        return []

    def high_uncertainty(self, k: int | None = None) -> pd.DataFrame:
        """The flagged responses (high reward and high reward SD), largest reward SD first (``k``: at most that many)."""
        flagged = self.responses[self.responses["flagged"]].sort_values(
            ["reward_sd", "reward"], ascending=False, kind="mergesort"
        )
        return (flagged if k is None else flagged.head(_check_k(k))).reset_index(drop=True)

    def relabel_candidates(
        self, k: int = 20, reason: str = "MC dropout: high reward, high uncertainty"
    ) -> pd.DataFrame:
        """The pairs of the :meth:`high_uncertainty` responses, for :func:`workbench.data.relabel.export_relabel_queue`.

        One row per pair (``id, prompt, chosen, rejected, label``, ``margin``: the RM's deterministic
        margin, its ``rm_preference`` in the queue), ordered by the largest reward SD of a flagged
        response; ``reason`` names which response was flagged.
        """
        k = _check_k(k)
        flagged = self.high_uncertainty()
        sides = flagged.groupby("id", sort=False)["side"].agg(lambda s: " and ".join(sorted(set(s))))
        ids = list(dict.fromkeys(flagged["id"]))[:k]
        cols = [c for c in ("id", "prompt", "history", "chosen", "rejected", "label", "category") if c in self.items]
        out = self.items.set_index("id", drop=False).loc[ids, cols + ["margin", "margin_sd"]].reset_index(drop=True)
        out["reason"] = [f"{reason} ({sides[i]})" for i in ids]
        return out

    def plot(self, ax=None, kind: str = "all"):
        """``margin_sd`` of pairs ranked right vs wrong, and reward vs reward SD of every response (flagged in red).

        ``kind="all"`` draws both panels, ``"errors"`` or ``"responses"`` one; returns the Figure.
        """
        fig, axes, chosen = panel_axes(kind, ("errors", "responses"), ax, (5.5, 3.8))
        for a, k in zip(axes, chosen):
            if k == "errors":
                self._plot_errors(a)
            else:
                self._plot_responses(a)
        if ax is None:
            fig.tight_layout()
        return fig

    def _plot_errors(self, ax) -> None:
        error_histogram(ax, self.items, "margin_sd")
        ax.set_xlabel(f"SD of the margin over {self.passes} dropout passes")
        ax.set_title(f"Uncertainty vs error: AUROC {self.auroc:.3f}")

    def _plot_responses(self, ax) -> None:
        r = self.responses
        ax.scatter(r["reward"], r["reward_sd"], s=8, color="tab:gray", alpha=0.5, label="responses")
        f = r[r["flagged"]]
        ax.scatter(f["reward"], f["reward_sd"], s=14, color="tab:red", label=f"flagged (n={len(f)})")
        ax.axvline(self.reward_threshold, color="k", lw=0.8, ls=":")
        ax.axhline(self.spread_threshold, color="k", lw=0.8, ls=":")
        ax.set_xlabel("reward (dropout off)")
        ax.set_ylabel("reward SD over passes")
        ax.set_title("High reward and high uncertainty")
        ax.legend(loc="best", fontsize="small")


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_quantile(q: Any, name: str) -> float:
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 <= float(q) < 1.0:
        raise ValueError(f"{name} must be a quantile in [0, 1), got {q!r}")
    return float(q)


def _interval(scores, mistakes, weights, ci) -> tuple[float, float]:
    if weights is None:
        return float("nan"), float("nan")
    lo, hi = percentile_ci(weighted_auroc(scores, mistakes, weights), ci)
    return float(lo), float(hi)


def _compare(items: pd.DataFrame, ensemble: EnsembleResult, weights: np.ndarray | None, ci: float, notes: list):
    """The ensemble's disagreement AUROC for this RM's mistakes on the common pairs, and the paired difference.

    ``weights``: the cluster-bootstrap multiplicities of every pair (``n_boot x n``), the same draws as the
    spread's own interval, so on the same pairs the first row repeats it.
    """
    ens = ensemble.items
    if "id" not in items.columns or "id" not in ens.columns:
        notes.append("no ensemble comparison: the pairs have no 'id' column to match them by")
        return pd.DataFrame()
    std = ens.drop_duplicates("id").set_index("id")["std_margin"]
    common = items["id"].isin(std.index).to_numpy() & items["mistake"].notna().to_numpy()
    mistakes = items["mistake"].to_numpy() == 1
    if not (mistakes[common].any() and (~mistakes[common]).any()):
        notes.append(
            f"no ensemble comparison: {int(common.sum())} pairs are shared with the ensemble result and the RM "
            "is right on all or wrong on all of them; run both on the same data"
        )
        return pd.DataFrame()
    if common.sum() < items["mistake"].notna().sum():
        notes.append(
            f"the ensemble comparison uses the {int(common.sum())} pairs shared with the ensemble result "
            f"(of {int(items['mistake'].notna().sum())} decided pairs)"
        )
    mc = items.loc[common, "margin_sd"].to_numpy(dtype=float)
    en = std.loc[items.loc[common, "id"]].to_numpy(dtype=float)
    y = mistakes[common]
    w = None if weights is None else weights[:, common]
    a_mc, a_en = disagreement_auroc(mc, y), disagreement_auroc(en, y)
    rows = [
        ("MC-dropout margin SD (shared pairs)", a_mc, mc),
        ("ensemble disagreement (std of member margins) for this RM's mistakes", a_en, en),
    ]
    out = []
    for name, point, s in rows:
        lo, hi = _interval(s, y, w, ci)
        out.append(
            {
                "signal": name,
                "pairs": int(len(y)),
                "mistakes": int(y.sum()),
                "auroc": point,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    lo = hi = float("nan")
    if w is not None:
        lo, hi = percentile_ci(weighted_auroc(mc, y, w) - weighted_auroc(en, y, w), ci)
    out.append(
        {
            "signal": "difference (MC dropout - ensemble)",
            "pairs": int(len(y)),
            "mistakes": int(y.sum()),
            "auroc": a_mc - a_en,
            "ci_low": float(lo),
            "ci_high": float(hi),
        }
    )
    return pd.DataFrame(out)


def flip_probability(mean_margin, margin_sd) -> np.ndarray:
    """``Phi(-|mean_margin| / margin_sd)``: the probability that a pass ranks the pair against the
    passes' mean, under a normal approximation; 0.5 for a zero mean, 0 for a zero spread and a
    nonzero mean."""
    from scipy.special import ndtr

    m = np.abs(np.asarray(mean_margin, dtype=float))
    s = np.asarray(margin_sd, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, m / np.where(s > 0, s, 1.0), np.where(m > 0, np.inf, 0.0))
    return ndtr(-z)


def mc_dropout_pairs(
    rm: Any,
    pairs: Any,
    *,
    passes: int = 8,
    seed: int = 0,
    dropout: float | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    ensemble: EnsembleResult | None = None,
    reward_quantile: float = 0.75,
    spread_quantile: float = 0.75,
    cluster_column: str | None = None,
    cache="default",
    progress: bool = False,
) -> MCDropoutResult:
    """MC-dropout uncertainty of ``rm`` on preference pairs (see the module docstring).

    ``pairs``: a PreferenceSet or DataFrame with ``prompt, chosen, rejected`` (and ``label``,
    ``id``). ``ensemble``: an :class:`EnsembleResult` on the same pairs to compare with.
    ``reward_quantile`` / ``spread_quantile``: a response is flagged when its deterministic
    reward and its reward SD are both at or above these quantiles of all scored responses.
    ``n_boot=0`` skips the intervals.
    """
    rm = _check_rm(rm)
    passes, seed = _check_passes(passes), _check_seed(seed)
    n_boot, ci = check_n_boot(n_boot), check_ci(ci)
    rq, sq = _check_quantile(reward_quantile, "reward_quantile"), _check_quantile(spread_quantile, "spread_quantile")
    frame = as_pair_frame(pairs)
    n = len(frame)
    codes, unit = cluster_labels(frame, cluster_column)
    label = frame["label"].to_numpy(dtype=float) if "label" in frame.columns else np.ones(n)
    hist = list(frame["history"]) if "history" in frame.columns else [None] * n
    hist = [h if isinstance(h, list) and h else None for h in hist]
    prompts, responses = list(frame["prompt"]) * 2, list(frame["chosen"]) + list(frame["rejected"])
    det = score_texts(rm, prompts, responses, hist * 2, cache=cache, progress=progress)
    mc = mc_dropout_scores(
        rm, prompts, responses, hist * 2, passes=passes, seed=seed, dropout=dropout, cache=cache, progress=progress
    )
    reward, mean, sd = det.scores, mc.mean, mc.sd
    margins = mc.rewards[:, :n] - mc.rewards[:, n:]
    margin = reward[:n] - reward[n:]
    mistake = _mistakes(margin, label)

    keep = [c for c in ("id", "prompt", "history", "chosen", "rejected", "category", "subset") if c in frame.columns]
    items = frame[keep].copy()
    if "id" not in items.columns:
        items.insert(0, "id", np.arange(n))
    items["label"] = label
    items["chosen_reward"], items["rejected_reward"], items["margin"] = reward[:n], reward[n:], margin
    items["mean_margin"], items["margin_sd"] = margins.mean(0), margins.std(0, ddof=1)
    items["chosen_reward_mean"], items["chosen_reward_sd"] = mean[:n], sd[:n]
    items["rejected_reward_mean"], items["rejected_reward_sd"] = mean[n:], sd[n:]
    items["flip_rate"] = (np.sign(margins) != np.sign(margin)).mean(0)
    items["flip_probability"] = flip_probability(items["mean_margin"], items["margin_sd"])
    items["mistake"] = mistake

    r_thr, s_thr = float(np.quantile(reward, rq)), float(np.quantile(sd, sq))
    resp = pd.DataFrame(
        {
            "id": np.concatenate([items["id"].to_numpy(dtype=object)] * 2),
            "side": ["chosen"] * n + ["rejected"] * n,
            "prompt": prompts,
            "response": responses,
            "reward": reward,
            "reward_mean": mean,
            "reward_sd": sd,
        }
    )
    resp["flagged"] = (reward >= r_thr) & (sd >= s_thr) & (sd > 0)

    notes = []
    if mc.n_dropout_modules == 0:
        notes.append(f"{rm.name} has no torch.nn.Dropout module: every pass gives the same scores (spread 0)")
    elif not mc.dropout_active:
        notes.append(
            f"every dropout module of {rm.name} has rate 0: the spread is 0; pass dropout=0.1 (the "
            "mc_dropout_rate parameter) to set a rate for the passes"
        )
    ok = np.isfinite(mistake)
    y = mistake[ok] == 1
    w_all = w = None
    if n_boot:
        w_all = np.concatenate(list(bootstrap_weights(n, n_boot, seed, clusters=codes)), axis=0).astype(float)
        w = w_all[:, ok] if 0 < y.sum() < len(y) else None
    rows = []
    for name, values in [
        (f"MC-dropout margin SD ({passes} passes)", items["margin_sd"]),
        ("MC-dropout sign-flip rate (share of passes against the deterministic sign)", items["flip_rate"]),
        ("MC-dropout flip probability (normal approximation of the passes' margins)", items["flip_probability"]),
        ("reference: small |margin| (dropout off, no MC)", -np.abs(margin)),
    ]:
        v = np.asarray(values, dtype=float)[ok]
        point = disagreement_auroc(v, y) if ok.any() else float("nan")
        lo, hi = _interval(v, y, w, ci) if np.isfinite(point) else (float("nan"), float("nan"))
        rows.append(
            {
                "signal": name,
                "pairs": int(ok.sum()),
                "mistakes": int(y.sum()),
                "auroc": point,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    signals = pd.DataFrame(rows)
    auroc, auroc_ci = rows[0]["auroc"], (rows[0]["ci_low"], rows[0]["ci_high"])
    undecided = [r["signal"].split(" (")[0] for r in rows[:3] if r["ci_low"] <= 0.5 <= r["ci_high"]]
    if undecided and n_boot:
        notes.append(
            f"on these {int(ok.sum())} pairs ({int(y.sum())} mistakes, {len(np.unique(codes))} {unit}s) the "
            f"{100 * ci:g}% interval of {', '.join(undecided)} includes 0.5: the data cannot tell that signal from "
            "chance here; more pairs (the subsample parameter, or in-distribution data) narrow it"
        )
    if np.isnan(auroc):
        notes.append(f"spread AUROC undefined: {rm.name} ranks every decided pair right, or every one wrong")
    comparison = pd.DataFrame()
    if ensemble is not None:
        if not isinstance(ensemble, EnsembleResult):
            raise TypeError(f"ensemble must be an EnsembleResult (from ensemble_audit), got {type(ensemble).__name__}")
        comparison = _compare(items, ensemble, w_all, ci, notes)
    return MCDropoutResult(
        items=items,
        responses=resp,
        auroc=float(auroc),
        auroc_ci=tuple(auroc_ci),
        comparison=comparison,
        signals=signals,
        passes=passes,
        seed=seed,
        rates=mc.rates,
        n_dropout_modules=mc.n_dropout_modules,
        reward_threshold=r_thr,
        spread_threshold=s_thr,
        model=rm.describe(),
        notes=notes,
        ci=ci,
        n_boot=n_boot,
        cluster_unit=unit,
        n_clusters=int(len(np.unique(codes))),
        n_cached=int(det.n_cached + sum(mc.n_cached)),
        n_computed=int(det.n_computed + sum(mc.n_computed)),
    )


def mc_dropout_audit(
    data: Any = "golden",
    model: Any = "demo-biased",
    *,
    passes: int = 8,
    dropout: float | None = None,
    sample_size: int | None = 0,
    subsample: int | None = 0,
    seed: int = 0,
    n_boot: int = 1000,
    ci: float = 0.95,
    ensemble: EnsembleResult | None = None,
    reward_quantile: float = 0.75,
    spread_quantile: float = 0.75,
    cluster_column: str | None = None,
    cache="default",
    progress: bool = False,
) -> MCDropoutResult:
    """Load pairs and an RM and run :func:`mc_dropout_pairs` in one call.

    ``sample_size`` pairs are kept (0: all) exactly as :func:`ensemble_audit` keeps them with the
    same ``seed``; ``subsample`` then scores only that many of those (0: all), a subset of the
    ensemble's pairs, so the two can be compared. The other arguments: :func:`mc_dropout_pairs`.
    """
    if isinstance(data, PreferenceSet):
        pairs = data
    elif isinstance(data, pd.DataFrame):
        pairs = PreferenceSet(frame=data.reset_index(drop=True), source="<frame>")
    else:
        pairs = load_data(data)
    pairs = pairs.sample(sample_size or None, seed=seed).sample(subsample or None, seed=seed)
    result = mc_dropout_pairs(
        model,
        pairs,
        passes=passes,
        seed=seed,
        dropout=dropout,
        n_boot=n_boot,
        ci=ci,
        ensemble=ensemble,
        reward_quantile=reward_quantile,
        spread_quantile=spread_quantile,
        cluster_column=cluster_column,
        cache=cache,
        progress=progress,
    )
    result.source = pairs.source
    return result
