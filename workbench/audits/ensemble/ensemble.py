"""Reward-model ensembles: aggregated rewards, uncertainty, and whether disagreement predicts mistakes.

Members are any reward models :func:`~workbench.models.adapters.load_reward_model`
accepts (``"demo-clean,demo-biased"``, folders, callables), bootstrap members
trained by :func:`train_bootstrap_members`, or a precomputed score matrix.

Definitions (``k`` members, item ``j``, member ``i``)
----------------------------------------------------
* **z-scoring** (``zscore=True``, the RewardBench offline-ensemble convention):
  ``z_ij = (r_ij - mean_j' r_ij') / std_j' r_ij'`` per member over all scored
  texts (population std, ``ddof=0``; a constant member gets std 1). For pairs the
  statistics pool the chosen and the rejected texts, so margins stay comparable.
* **mean**: ``m_j = mean_i z_ij``; **std**: ``s_j = std_i z_ij`` (``ddof=0``);
  **worst-case** (WCO, Coste et al.): ``min_i z_ij``; **uncertainty-penalised**:
  ``m_j - lam * s_j`` (RewardBench's "uncertainty" aggregator for ``lam = 1``;
  Coste et al.'s UWO penalises the variance instead). With two members and
  ``ddof=0``, ``m - s`` equals the minimum, so mean-std and worst-case coincide
  at ``lam = 1``.
* For a pair, an aggregator's margin is ``agg(chosen) - agg(rejected)``.
  ``std_margin`` is the std over members of the members' own margins
  ``z_i(chosen) - z_i(rejected)``, the disagreement about *this comparison*.
* **Disagreement AUROC**: the probability that a pair the mean aggregator gets
  wrong has a larger ``std_margin`` than a pair it gets right (ties count 1/2),
  ``sklearn.metrics.roc_auc_score(mistake, std_margin)``. 0.5 means the
  ensemble's uncertainty carries no information about its errors. Human ties
  (``label == 0.5``) and zero mean margins are left out.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "parse_members",
    "load_members",
    "score_matrix",
    "zscore_matrix",
    "ensemble_scores",
    "EnsembleScores",
    "ensemble_pairs",
    "EnsembleResult",
    "disagreement_auroc",
    "train_bootstrap_members",
]


# --------------------------------------------------------------------------- members


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
    """Load every member with :func:`~workbench.models.adapters.load_reward_model`; names must be unique."""
    from workbench.models.adapters import load_reward_model

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
    from workbench.models.scoring import score_texts

    cols = {}
    for m in members:
        cols[m.name] = score_texts(m, list(prompts), list(responses), histories, cache=cache, progress=progress).scores
    return pd.DataFrame(cols)


def zscore_matrix(matrix: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column z-scores ``(x - mean) / std`` (``ddof=0``; std 0 -> 1). Returns ``(z, means, stds)``."""
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"score matrix must be 2-D (items x members), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("score matrix has non-finite values")
    mu = x.mean(0)
    sd = x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mu) / sd, mu, sd


def _check_lam(lam: Any) -> float:
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    return float(lam)


def _as_matrix(models_or_matrix: Any, prompts, responses, names, cache, progress) -> pd.DataFrame:
    if isinstance(models_or_matrix, pd.DataFrame):
        mat = models_or_matrix.astype(float)
    elif isinstance(models_or_matrix, np.ndarray):
        if models_or_matrix.ndim != 2:
            raise ValueError(f"score matrix must be 2-D (items x members), got shape {models_or_matrix.shape}")
        mat = pd.DataFrame(
            models_or_matrix.astype(float),
            columns=names or [f"member{i + 1}" for i in range(models_or_matrix.shape[1])],
        )
    else:
        if prompts is None or responses is None:
            raise ValueError("prompts and responses are needed to score with models (or pass a score matrix)")
        mat = score_matrix(load_members(models_or_matrix), prompts, responses, cache=cache, progress=progress)
    if mat.shape[1] < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {mat.shape[1]}")
    if names is not None:
        if len(names) != mat.shape[1]:
            raise ValueError(f"names has {len(names)} entries for {mat.shape[1]} members")
        mat.columns = list(names)
    return mat


@dataclass
class EnsembleScores:
    """Per-item ensemble rewards; ``z`` holds the (optionally z-scored) member scores."""

    raw: pd.DataFrame
    z: pd.DataFrame
    lam: float
    zscored: bool
    member_mean: np.ndarray
    member_std: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.z.to_numpy().mean(1)

    @property
    def std(self) -> np.ndarray:
        return self.z.to_numpy().std(1)

    @property
    def worst(self) -> np.ndarray:
        return self.z.to_numpy().min(1)

    @property
    def penalized(self) -> np.ndarray:
        """``mean - lam * std``."""
        return self.mean - self.lam * self.std

    def to_frame(self) -> pd.DataFrame:
        out = self.z.add_prefix("z_" if self.zscored else "")
        out["mean"], out["std"], out["worst"], out["penalized"] = self.mean, self.std, self.worst, self.penalized
        return out


def ensemble_scores(
    models_or_matrix: Any,
    prompts: Sequence[str] | None = None,
    responses: Sequence[str] | None = None,
    zscore: bool = True,
    lam: float = 1.0,
    *,
    names: Sequence[str] | None = None,
    cache="default",
    progress: bool = False,
) -> EnsembleScores:
    """Per-item mean, std, worst-case and ``mean - lam * std`` over ensemble members.

    ``models_or_matrix`` is a list (or comma-separated string) of RM specs,
    scored on ``prompts``/``responses``, or an ``items x members`` matrix
    (array or DataFrame whose columns name the members).
    """
    lam = _check_lam(lam)
    mat = _as_matrix(models_or_matrix, prompts, responses, names, cache, progress)
    if zscore:
        z, mu, sd = zscore_matrix(mat)
    else:
        z, mu, sd = mat.to_numpy(dtype=float), np.zeros(mat.shape[1]), np.ones(mat.shape[1])
    return EnsembleScores(mat.reset_index(drop=True), pd.DataFrame(z, columns=mat.columns), lam, bool(zscore), mu, sd)


# --------------------------------------------------------------------------- pairs


def disagreement_auroc(std_margin: Any, mistakes: Any) -> float:
    """AUROC of ``std_margin`` for predicting ``mistakes`` (1 = the ensemble ranked the pair wrongly).

    ``sklearn.metrics.roc_auc_score(mistakes, std_margin)``; NaN (not an error)
    when all pairs are mistakes or none is, since the AUROC is then undefined.
    """
    from sklearn.metrics import roc_auc_score

    s = np.asarray(std_margin, dtype=float).reshape(-1)
    y = np.asarray(mistakes).reshape(-1)
    if s.size != y.size:
        raise ValueError(f"std_margin and mistakes differ in length ({s.size} vs {y.size})")
    if not np.all(np.isfinite(s)):
        raise ValueError("std_margin has non-finite values")
    if y.dtype != bool:
        yf = y.astype(float)
        if not np.all(np.isin(yf, (0.0, 1.0))):
            raise ValueError("mistakes must be boolean or 0/1")
        y = yf.astype(bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))


AGGREGATORS = ("mean", "worst-case", "uncertainty")


@dataclass
class EnsembleResult:
    """Ensemble evaluation on preference pairs (see the module docstring).

    ``items``: one row per pair with ``id, prompt, chosen, rejected, label``, each
    member's margin (``margin:<name>``), ``mean_margin, worst_margin,
    uncertainty_margin, std_margin, disagree`` (members' signs differ) and
    ``mistake`` (the mean aggregator ranks the pair against the label; NaN for
    human ties and zero margins). ``accuracy``: one row per member and aggregator.
    """

    items: pd.DataFrame
    accuracy: pd.DataFrame
    members: list[str]
    lam: float
    zscored: bool
    auroc: float
    auroc_ci: tuple[float, float]
    disagreement_rate: float
    member_disagreement: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.accuracy.copy()

    def summary(self) -> dict:
        acc = dict(zip(self.accuracy["scorer"], self.accuracy["accuracy"]))
        return {
            "n_pairs": int(len(self.items)),
            "members": list(self.members),
            "lam": self.lam,
            "zscored": self.zscored,
            "disagreement_rate": self.disagreement_rate,
            "auroc_std_vs_mistake": self.auroc,
            "auroc_ci": self.auroc_ci,
            **{f"accuracy[{k}]": v for k, v in acc.items()},
        }

    def verdicts(self) -> pd.DataFrame:
        """Graded checks for the report.

        * ``disagreement predicts mistakes``: AUROC of ``std_margin`` for mistakes;
          ``pass`` when its bootstrap interval lies above 0.5, ``warn`` otherwise
          (the ensemble's uncertainty is not a usable error signal), ``n/a`` if undefined.
        * ``mean aggregator vs best member``: accuracy difference; ``warn`` when the
          mean aggregator is below the best single member, else ``pass``.
        """
        a = self.accuracy.set_index("scorer")["accuracy"]
        members = self.accuracy.loc[self.accuracy["kind"] == "member", "accuracy"]
        lo = self.auroc_ci[0]
        v1 = "n/a" if not np.isfinite(self.auroc) else ("pass" if np.isfinite(lo) and lo > 0.5 else "warn")
        diff = float(a["mean"] - members.max())
        return pd.DataFrame(
            [
                {
                    "check": "disagreement predicts mistakes (AUROC)",
                    "value": self.auroc,
                    "threshold": "95% CI above 0.5: pass",
                    "verdict": v1,
                    "detail": f"CI {self.auroc_ci[0]:.3f}-{self.auroc_ci[1]:.3f}; disagreement rate {self.disagreement_rate:.3f}",
                },
                {
                    "check": "mean aggregator vs best member (accuracy)",
                    "value": diff,
                    "threshold": "< 0: warn",
                    "verdict": "warn" if diff < 0 else "pass",
                    "detail": f"mean {a['mean']:.3f}, best member {members.max():.3f}",
                },
            ]
        )

    def top_disagreements(self, k: int = 10) -> pd.DataFrame:
        """The ``k`` pairs with the largest ``std_margin`` (member margins side by side)."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        cols = [
            c for c in ("id", "prompt", "chosen", "rejected", "label", "category", "subset") if c in self.items.columns
        ]
        cols += [f"margin:{m}" for m in self.members] + ["mean_margin", "std_margin", "mistake"]
        return (
            self.items.sort_values("std_margin", ascending=False, kind="mergesort")
            .head(int(k))[cols]
            .reset_index(drop=True)
        )

    def plot(self, axes=None):
        """Left: accuracy of each member and aggregator (bootstrap CI). Right: ``std_margin`` of correct vs wrong pairs."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        ax0, ax1 = axes
        a = self.accuracy
        y = np.arange(len(a))[::-1]
        err = np.vstack([np.nan_to_num(a["accuracy"] - a["ci_low"]), np.nan_to_num(a["ci_high"] - a["accuracy"])])
        colors = ["tab:gray" if k == "member" else "tab:blue" for k in a["kind"]]
        ax0.barh(y, a["accuracy"], xerr=err, color=colors, capsize=3)
        ax0.set_yticks(y)
        ax0.set_yticklabels(a["scorer"], fontsize="small")
        ax0.axvline(0.5, color="k", lw=0.8, ls=":")
        ax0.set_xlim(0, 1)
        ax0.set_xlabel("pairwise accuracy")
        ax0.set_title("Members (gray) and aggregators (blue)")
        it = self.items
        ok = it["mistake"].notna()
        wrong = it.loc[ok & (it["mistake"] == 1), "std_margin"]
        right = it.loc[ok & (it["mistake"] == 0), "std_margin"]
        bins = np.linspace(0, max(float(it["std_margin"].max()), 1e-9), 25)
        ax1.hist(right, bins=bins, alpha=0.6, density=True, label=f"ranked right (n={len(right)})")
        ax1.hist(wrong, bins=bins, alpha=0.6, density=True, label=f"ranked wrong (n={len(wrong)})")
        ax1.set_xlabel("std of member margins")
        ax1.set_title(f"Disagreement vs error: AUROC {self.auroc:.3f}")
        ax1.legend(fontsize="small")
        return axes


def _pairs_frame(pairs: Any) -> pd.DataFrame:
    frame = pairs.frame if hasattr(pairs, "frame") else pairs
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"pairs must be a PreferenceSet or DataFrame, got {type(pairs).__name__}")
    for col in ("prompt", "chosen", "rejected"):
        if col not in frame.columns:
            raise ValueError(f"pairs need a {col!r} column")
    if len(frame) < 2:
        raise ValueError("need at least 2 pairs")
    return frame.reset_index(drop=True)


def ensemble_pairs(
    models_or_scores: Any,
    pairs: Any,
    zscore: bool = True,
    lam: float = 1.0,
    *,
    names: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: Any = 0,
    cache="default",
    progress: bool = False,
) -> EnsembleResult:
    """Evaluate an ensemble on preference pairs.

    ``models_or_scores`` is a list (or comma-separated string) of RM specs, or
    a tuple ``(chosen_matrix, rejected_matrix)`` of ``pairs x members`` scores.
    Accuracies use :func:`workbench.audits.calibration.metrics.pairwise_accuracy` (human and
    model ties excluded) with percentile-bootstrap intervals over pairs.
    """
    from workbench.audits.calibration.metrics import bootstrap_ci, pairwise_accuracy

    lam = _check_lam(lam)
    frame = _pairs_frame(pairs)
    n = len(frame)
    label = frame["label"].to_numpy(dtype=float) if "label" in frame.columns else np.ones(n)
    if isinstance(models_or_scores, tuple) and len(models_or_scores) == 2:
        c = _as_matrix(models_or_scores[0], None, None, names, cache, progress)
        r = _as_matrix(models_or_scores[1], None, None, list(c.columns), cache, progress)
        if c.shape != (n, c.shape[1]) or r.shape != c.shape:
            raise ValueError(f"chosen and rejected score matrices must both be {n} x k, got {c.shape} and {r.shape}")
        both = pd.concat([c, r], ignore_index=True)
    else:
        members = load_members(models_or_scores)
        hist = list(frame["history"]) if "history" in frame.columns else [None] * n
        hist = [h if isinstance(h, list) and h else None for h in hist]
        both = score_matrix(
            members,
            list(frame["prompt"]) * 2,
            list(frame["chosen"]) + list(frame["rejected"]),
            hist * 2,
            cache=cache,
            progress=progress,
        )
        if names is not None:
            both.columns = list(names)
    es = ensemble_scores(both, zscore=zscore, lam=lam)
    z = es.z.to_numpy()
    zc, zr = z[:n], z[n:]
    member_names = list(es.z.columns)
    margins = zc - zr
    mean_m = es.mean[:n] - es.mean[n:]
    worst_m = es.worst[:n] - es.worst[n:]
    unc_m = es.penalized[:n] - es.penalized[n:]
    std_m = margins.std(1)
    signs = np.sign(margins)
    disagree = ~(np.all(signs == signs[:, :1], axis=1))
    decided = (label != 0.5) & (mean_m != 0)
    mistake = np.where(decided, ((mean_m > 0) != (label > 0.5)).astype(float), np.nan)

    keep = [c for c in ("id", "prompt", "chosen", "rejected", "category", "subset") if c in frame.columns]
    items = frame[keep].copy()
    items["label"] = label
    for j, m in enumerate(member_names):
        items[f"margin:{m}"] = margins[:, j]
    items["mean_margin"], items["worst_margin"], items["uncertainty_margin"] = mean_m, worst_m, unc_m
    items["std_margin"], items["disagree"], items["mistake"] = std_m, disagree, mistake

    def acc(m, y):
        return pairwise_accuracy(m, y).accuracy

    rows = []
    scorers = [(m, "member", margins[:, j]) for j, m in enumerate(member_names)]
    scorers += [
        ("mean", "aggregator", mean_m),
        ("worst-case", "aggregator", worst_m),
        (f"mean - {lam:g}*std", "aggregator", unc_m),
    ]
    for name, kind, m in scorers:
        pa = pairwise_accuracy(m, label)
        lo, hi = bootstrap_ci(acc, m, label, n_boot=n_boot, seed=seed) if n_boot else (np.nan, np.nan)
        rows.append(
            {
                "scorer": name,
                "kind": kind,
                "accuracy": pa.accuracy,
                "ci_low": lo,
                "ci_high": hi,
                "n_decided": pa.n_decided,
                "n_correct": pa.n_correct,
                "n_wrong": pa.n_wrong,
                "tie_rate": pa.tie_rate,
            }
        )
    notes = []
    ok = np.isfinite(mistake)
    auroc = disagreement_auroc(std_m[ok], mistake[ok]) if ok.any() else float("nan")
    auroc_ci = (float("nan"), float("nan"))
    if np.isnan(auroc):
        notes.append("disagreement AUROC undefined: the mean aggregator is right on every pair or wrong on every pair")
    elif n_boot:
        auroc_ci = tuple(bootstrap_ci(disagreement_auroc, std_m[ok], mistake[ok], n_boot=n_boot, seed=seed))
    k = len(member_names)
    dis = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            dis[i, j] = float(np.mean(np.sign(margins[:, i]) != np.sign(margins[:, j])))
    if k == 2 and zscore and lam == 1.0:
        notes.append("with 2 members, mean - 1*std (ddof=0) equals the worst case")
    return EnsembleResult(
        items,
        pd.DataFrame(rows),
        member_names,
        lam,
        bool(zscore),
        auroc,
        auroc_ci,
        float(disagree.mean()),
        pd.DataFrame(dis, index=member_names, columns=member_names),
        notes,
    )


# --------------------------------------------------------------------------- bootstrap members


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
    from dataclasses import asdict
    from pathlib import Path

    from workbench.models.training import TrainingConfig, train_value_head
    from workbench.paths import cache_dir, minilm_dir

    frame = _pairs_frame(pairs)
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
