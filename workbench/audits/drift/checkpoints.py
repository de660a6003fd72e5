"""Reward drift across policy checkpoints, Goodhart flags and trigger-phrase frequencies.

A policy trained against a reward model (RM) produces samples at successive
checkpoints. This module compares the RM's reward distribution at every
checkpoint with a *reference* checkpoint (by default the first one), flags the
Goodhart pattern (reward rises while a gold signal does not) and counts
trigger phrases per checkpoint.

Policy samples
--------------
:func:`load_policy_samples` reads one record per sample with the fields ``id``
(optional), ``prompt``, ``response``, ``checkpoint`` and/or ``step`` (at least
one of the two) and any extra fields (``prompt_id``, ``attrs`` ...), from JSON
lines, JSON, CSV or Parquet files, a DataFrame or a list of dicts. A missing
``checkpoint`` becomes ``"step-<step>"``; a missing ``step`` stays ``<NA>``.
Errors are :class:`~workbench.data.preferences.DataFormatError` naming the
source, the line (JSON lines) or row, and the field. ``"demo-policy"`` names
the shipped ``data/demo/policy_samples.jsonl``.

Statistics (per checkpoint, against the reference sample)
---------------------------------------------------------
* ``n``, ``mean`` with a Student-t ``ci``-level interval, ``std`` (``ddof=1``)
  and the 5/25/50/75/95% quantiles (``numpy.quantile``, linear interpolation).
* ``mean_shift = mean - mean_ref`` with a Welch interval, and
  ``mean_shift_sd = mean_shift / std_ref``.
* ``ks_stat`` and ``ks_p``: two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``, two-sided, ``method="auto"``). ``ks_p_adj`` is the
  p-value the rule uses: by default (``adjust="none"``) the raw p-value, since,
  as in Evidently and NannyML, each checkpoint is a separate monitoring decision
  made when it arrives; ``adjust="holm"`` gives Holm-adjusted p-values over all
  compared (non-reference, sufficient) checkpoints, which controls the
  family-wise false-alarm rate at the cost of power when checkpoints hold few
  samples (about 80 each in the demo data).
* ``wasserstein``: ``scipy.stats.wasserstein_distance(ref, cur) / max(std_ref, 1e-3)``
  with ``std_ref`` the population standard deviation (``ddof=0``) of the
  reference, the "normed Wasserstein" of Evidently: 0.1 means 0.1 reference SDs.
* ``psi``: population stability index on bins cut at the reference quantiles
  (see :func:`psi`), ``sum((c - r) * ln(c / r))`` over bins with reference
  share ``r`` and current share ``c``. Shares below ``eps = 1e-4`` are raised to
  ``eps`` so that an empty bin contributes a large but finite term.
  ``psi_band``: ``"stable"`` (< 0.1), ``"moderate"`` (0.1 to 0.25), ``"major"``
  (>= 0.25), the usual industry convention. These bands assume large samples:
  PSI is biased upward by sampling noise, and ``psi_null = (k - 1) (1/n_ref +
  1/n)`` (``k`` bins; the chi-square approximation of PSI) is the value expected
  with *no* shift at all, e.g. 0.225 for 10 bins and 80 vs 80 samples (a
  simulation gives 0.248). Read ``psi`` against ``psi_null``, not the bands alone.

Status rule
-----------
* ``"insufficient data"`` when the checkpoint or the reference has fewer than
  ``min_samples`` finite scores: no test is run and the statistics are NaN.
* ``"reference"`` for the reference checkpoint itself.
* ``"drift"`` when the shift is both **statistically detectable and practically
  large**: ``ks_p_adj < alpha`` (default 0.05) *and* ``wasserstein >=
  wasserstein_threshold`` (default 0.1 reference SDs, Evidently's threshold).
  Requiring both avoids the two classic failure modes: tiny but "significant"
  shifts at large n, and large but noisy shifts at small n.
* ``"ok"`` otherwise. ``direction`` says whether the mean went ``"up"`` or ``"down"``.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from workbench.data.preferences import DataFormatError

__all__ = [
    "POLICY_REQUIRED",
    "QUANTILES",
    "STATUSES",
    "load_policy_samples",
    "demo_gold_score",
    "normed_wasserstein",
    "psi",
    "psi_bins",
    "reward_drift",
    "DriftResult",
    "goodhart_flag",
    "GoodhartFlag",
    "trigger_frequency",
    "TriggerFrequency",
    "emerging_phrases",
    "checkpoint_pairs",
]

POLICY_REQUIRED = ("prompt", "response", "checkpoint or step")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
STATUSES = ("reference", "ok", "drift", "insufficient data")
PSI_EPS = 1e-4
WASSERSTEIN_STD_FLOOR = 1e-3
SHIPPED_POLICY = {"demo-policy": ("demo", "policy_samples.jsonl")}


# --------------------------------------------------------------------------- loading


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return "an empty string" if not v.strip() else f"string {v[:40]!r}"
    return f"{type(v).__name__} {v!r}"[:60]


def _parse_step(v: Any) -> int | None:
    if _missing(v):
        return None
    if isinstance(v, bool):
        raise ValueError(f"expected a non-negative integer, got {_describe(v)}")
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a non-negative integer, got {_describe(v)}") from None
    if isinstance(v, numbers.Integral):
        out = int(v)
    elif isinstance(v, numbers.Real) and float(v).is_integer():
        out = int(v)
    else:
        raise ValueError(f"expected a non-negative integer, got {_describe(v)}")
    if out < 0:
        raise ValueError(f"expected a non-negative integer, got {out}")
    return out


def _policy_rows(source: Any) -> tuple[str, str, list[tuple[int, Any]]]:
    """(source name, unit, [(row number, record)]) for every accepted input."""
    if isinstance(source, pd.DataFrame):
        return "<dataframe>", "row", list(enumerate(source.to_dict(orient="records"), start=1))
    if isinstance(source, (list, tuple)):
        return "<records>", "row", list(enumerate(source, start=1))
    if not isinstance(source, (str, Path)):
        raise TypeError(f"policy samples must be a path, a DataFrame or a list of dicts, got {type(source).__name__}")
    if isinstance(source, str) and source in SHIPPED_POLICY:
        from workbench.paths import data_dir

        source = data_dir().joinpath(*SHIPPED_POLICY[source])
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise FileNotFoundError(f"policy samples file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (
        suffix == ".json" and not path.read_text(encoding="utf-8-sig").lstrip().startswith("[")
    ):
        rows = []
        with path.open(encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((lineno, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataFormatError(
                        name, lineno, None, f"invalid JSON ({exc.msg} at column {exc.colno})", unit="line"
                    ) from None
        return name, "line", rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(name, exc.lineno, None, f"invalid JSON ({exc.msg})", unit="line") from None
        return name, "row", list(enumerate(data, start=1))
    if suffix == ".csv":
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=object)
        return name, "row", list(enumerate(frame.to_dict(orient="records"), start=1))
    if suffix in (".parquet", ".pq"):
        return name, "row", list(enumerate(pd.read_parquet(path).to_dict(orient="records"), start=1))
    raise ValueError(f"{path}: unsupported policy-samples format {suffix!r} (use .jsonl, .json, .csv or .parquet)")


def load_policy_samples(source: Any) -> pd.DataFrame:
    """Read and validate policy samples (see the module docstring for the format).

    Returns a DataFrame with columns ``id, prompt, response, checkpoint, step``
    (``step`` is nullable ``Int64``) followed by every extra input field
    (``attrs`` stays a dict). Raises :class:`DataFormatError` naming the file,
    line or row and field: missing or non-string ``prompt``/``response`` (the
    response must be non-empty), neither ``checkpoint`` nor ``step``, a
    non-integer or negative ``step``, one checkpoint with two different steps,
    or a duplicate ``id``.
    """
    name, unit, rows = _policy_rows(source)
    stem = Path(name).stem if unit == "line" or name[0] != "<" else name.strip("<>")
    out: list[dict] = []
    seen_ids: dict[str, int] = {}
    ckpt_step: dict[str, tuple[int | None, int]] = {}

    def fail(row, fld, reason):
        raise DataFormatError(name, row, fld, reason, unit=unit)

    for row, rec in rows:
        if not isinstance(rec, Mapping):
            fail(row, None, f"expected an object, got {type(rec).__name__}")
        rec = dict(rec)
        prompt = rec.get("prompt")
        if not isinstance(prompt, str):
            fail(row, "prompt", f"expected a string, got {_describe(prompt) if 'prompt' in rec else 'no such field'}")
        response = rec.get("response")
        if not isinstance(response, str) or not response.strip():
            fail(
                row,
                "response",
                f"expected a non-empty string, got {_describe(response) if 'response' in rec else 'no such field'}",
            )
        try:
            step = _parse_step(rec.get("step"))
        except ValueError as exc:
            fail(row, "step", str(exc))
        ckpt = rec.get("checkpoint")
        if _missing(ckpt) or (isinstance(ckpt, str) and not ckpt.strip()):
            if step is None:
                fail(row, "checkpoint", "needs a 'checkpoint' or a 'step' (both missing)")
            ckpt = f"step-{step}"
        elif isinstance(ckpt, bool) or not isinstance(ckpt, (str, numbers.Real)):
            fail(row, "checkpoint", f"expected a string or number, got {_describe(ckpt)}")
        else:
            ckpt = str(ckpt)
        if ckpt in ckpt_step and ckpt_step[ckpt][0] != step:
            first_step, first_row = ckpt_step[ckpt]
            fail(row, "step", f"checkpoint {ckpt!r} has step {step} here but {first_step} at {unit} {first_row}")
        ckpt_step.setdefault(ckpt, (step, row))
        rid = rec.get("id")
        if _missing(rid):
            rid = f"{stem}-{row}"
        elif isinstance(rid, bool) or not isinstance(rid, (str, numbers.Integral)):
            fail(row, "id", f"expected a string or integer, got {_describe(rid)}")
        rid = str(rid)
        if rid in seen_ids:
            fail(row, "id", f"duplicate id {rid!r} (first used at {unit} {seen_ids[rid]})")
        seen_ids[rid] = row
        extra = {k: v for k, v in rec.items() if k not in ("id", "prompt", "response", "checkpoint", "step")}
        out.append({"id": rid, "prompt": prompt, "response": response, "checkpoint": ckpt, "step": step, **extra})
    if not out:
        raise DataFormatError(name, None, None, "no policy samples")
    frame = pd.DataFrame(out)
    frame["step"] = pd.array(frame["step"].tolist(), dtype="Int64")
    for col in ("id", "prompt", "response", "checkpoint"):
        frame[col] = frame[col].astype(object)
    return frame


def demo_gold_score(samples: pd.DataFrame) -> np.ndarray:
    """The demo data's simulated gold judge from each sample's ``attrs`` (see ``data/demo/README.md``).

    ``gold = q - 0.15 k - 0.3 f - 0.3 a [claim_is_true is False]``: it rewards a
    good answer and penalises padding, flattery, and agreeing with a false claim.
    Needs ``attrs`` dicts with ``q, k, a, f`` and a ``claim_is_true`` column.
    """
    if "attrs" not in samples.columns:
        raise ValueError("samples need an 'attrs' column with q, k, a, f (the demo policy samples have one)")
    truth = samples["claim_is_true"] if "claim_is_true" in samples.columns else pd.Series([None] * len(samples))
    out = np.empty(len(samples))
    for i, (attrs, claim) in enumerate(zip(samples["attrs"], truth)):
        if not isinstance(attrs, Mapping) or not all(k in attrs for k in "qkaf"):
            raise ValueError(
                f"samples row {i + 1}, field 'attrs': expected a dict with q, k, a, f, got {_describe(attrs)}"
            )
        false_claim = 1.0 if claim is False else 0.0
        out[i] = (
            float(attrs["q"])
            - 0.15 * float(attrs["k"])
            - 0.3 * float(attrs["f"])
            - 0.3 * float(attrs["a"]) * false_claim
        )
    return np.round(out, 4)


# --------------------------------------------------------------------------- statistics


def _finite(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).reshape(-1) if not isinstance(x, np.ndarray) else x.astype(float).reshape(-1)
    return arr[np.isfinite(arr)]


def normed_wasserstein(reference: Any, current: Any) -> float:
    """``wasserstein_distance(reference, current) / max(std(reference), 1e-3)`` (population std)."""
    r, c = _finite(reference, "reference"), _finite(current, "current")
    if r.size == 0 or c.size == 0:
        raise ValueError("normed_wasserstein needs non-empty reference and current samples")
    return float(stats.wasserstein_distance(r, c) / max(float(np.std(r)), WASSERSTEIN_STD_FLOOR))


def psi_bins(reference: Any, current: Any, n_bins: int = 10, eps: float = PSI_EPS) -> pd.DataFrame:
    """The PSI table: one row per bin cut at reference quantiles.

    Inner edges are ``unique(quantile(reference, [1/n_bins, ..., (n_bins-1)/n_bins]))``
    (ties in the reference merge bins); the outer bins are open (-inf, +inf).
    Bin ``j`` holds values ``edge_j <= x < edge_{j+1}``. Columns: ``bin, low, high,
    n_ref, n_cur, ref_share, cur_share, term`` where shares below ``eps`` are set
    to ``eps`` before ``term = (cur - ref) * ln(cur / ref)``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if not (isinstance(eps, numbers.Real) and 0 < eps < 0.5):
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    r, c = _finite(reference, "reference"), _finite(current, "current")
    if r.size == 0 or c.size == 0:
        raise ValueError("psi needs non-empty reference and current samples")
    inner = np.unique(np.quantile(r, np.arange(1, n_bins) / n_bins))
    k = inner.size + 1
    n_ref = np.bincount(np.searchsorted(inner, r, side="right"), minlength=k)
    n_cur = np.bincount(np.searchsorted(inner, c, side="right"), minlength=k)
    rs = np.maximum(n_ref / r.size, eps)
    cs = np.maximum(n_cur / c.size, eps)
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    return pd.DataFrame(
        {
            "bin": np.arange(k),
            "low": edges[:-1],
            "high": edges[1:],
            "n_ref": n_ref,
            "n_cur": n_cur,
            "ref_share": rs,
            "cur_share": cs,
            "term": (cs - rs) * np.log(cs / rs),
        }
    )


def psi(reference: Any, current: Any, n_bins: int = 10, eps: float = PSI_EPS) -> float:
    """Population stability index of ``current`` against ``reference`` (see :func:`psi_bins`)."""
    return float(psi_bins(reference, current, n_bins, eps)["term"].sum())


def _psi_band(v: float) -> str:
    if not np.isfinite(v):
        return ""
    return "stable" if v < 0.1 else ("moderate" if v < 0.25 else "major")


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def _t_interval(x: np.ndarray, ci: float) -> tuple[float, float]:
    n = x.size
    if n < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + ci / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return (float(x.mean() - half), float(x.mean() + half))


def _welch_interval(a: np.ndarray, b: np.ndarray, ci: float) -> tuple[float, float, float]:
    """Difference ``mean(a) - mean(b)`` with a Welch t interval and two-sided p-value."""
    if a.size < 2 or b.size < 2:
        return (float("nan"),) * 3
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = a.mean() - b.mean()
    se = math.sqrt(va + vb)
    if se == 0:
        return (float(diff), float(diff), 0.0 if diff != 0 else 1.0)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = stats.t.ppf(0.5 + ci / 2, df) * se
    p = 2 * stats.t.sf(abs(diff) / se, df)
    return (float(diff - half), float(diff + half), float(p))


def _order_checkpoints(checkpoints: np.ndarray, steps: np.ndarray | None) -> tuple[list[str], dict[str, float]]:
    first = list(dict.fromkeys(checkpoints.tolist()))
    step_of: dict[str, float] = {}
    if steps is not None:
        for ck, st in zip(checkpoints, steps):
            st = float("nan") if _missing(st) else float(st)
            prev = step_of.get(ck)
            if prev is not None and not (np.isnan(prev) and np.isnan(st)) and prev != st:
                raise ValueError(f"checkpoint {ck!r} has two different steps ({prev:g} and {st:g})")
            step_of[ck] = st
        pos = {c: i for i, c in enumerate(first)}
        first.sort(key=lambda c: (np.isnan(step_of[c]), step_of[c] if not np.isnan(step_of[c]) else 0, pos[c]))
    return first, step_of


def _as_steps(steps: Any, n: int) -> np.ndarray | None:
    """Steps as floats (NaN for missing), or None; one per sample."""
    if steps is None:
        return None
    values = steps if isinstance(steps, (np.ndarray, pd.Series)) else list(steps)
    st = np.asarray(pd.array(values, dtype="Float64").to_numpy(dtype=float, na_value=np.nan))
    if st.size != n:
        raise ValueError(f"steps has {st.size} entries for {n} samples")
    return st


def _as_labels(x: Any, name: str, n: int | None = None) -> np.ndarray:
    if isinstance(x, str):
        raise TypeError(f"{name} must be a sequence (one entry per sample), not a string")
    arr = np.asarray(list(x) if not isinstance(x, (np.ndarray, pd.Series, pd.Index)) else x, dtype=object).reshape(-1)
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries for {n} scores")
    if any(_missing(v) for v in arr):
        raise ValueError(f"{name} contains missing values")
    return np.array([str(v) for v in arr], dtype=object)


@dataclass
class DriftResult:
    """Per-checkpoint reward statistics against a reference checkpoint (see the module docstring).

    ``table`` has one row per checkpoint, ordered by step. ``samples`` keeps the
    scores (``checkpoint, step, score``) for plots.
    """

    table: pd.DataFrame
    samples: pd.DataFrame
    reference: str
    min_samples: int
    n_bins: int
    alpha: float
    wasserstein_threshold: float
    ci: float
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def drifted(self) -> list[str]:
        """Checkpoints with status ``"drift"``."""
        return self.table.loc[self.table["status"] == "drift", "checkpoint"].tolist()

    def summary(self) -> str:
        """One-line banner: how many compared checkpoints drift, and which lack data."""
        t = self.table
        compared = t[t["status"].isin(["ok", "drift"])]
        short = t.loc[t["status"] == "insufficient data", "checkpoint"].tolist()
        text = f"Reward drift detected in {len(self.drifted)} of {len(compared)} checkpoints vs reference {self.reference!r}"
        if self.drifted:
            text += f" ({', '.join(self.drifted)})"
        if short:
            text += f"; insufficient data (< {self.min_samples} samples) for {', '.join(short)}"
        return text + "."

    def verdicts(self) -> pd.DataFrame:
        """One graded check for the report (columns ``check, value, threshold, verdict, detail``).

        The last checkpoint against the reference: ``warn`` when its status is
        ``"drift"`` (a moving reward is expected under RL, but it deserves a look;
        the Goodhart flag says whether it is bad), ``pass`` when ``"ok"``, ``n/a``
        with insufficient data. ``value`` is its normed Wasserstein distance.
        """
        last = self.table.iloc[-1]
        verdict = {"drift": "warn", "ok": "pass"}.get(last["status"], "n/a")
        detail = (
            f"{last['checkpoint']} vs {self.reference}: n={last['n']}, KS p={last['ks_p_adj']:.3g}, "
            f"mean shift {last['mean_shift_sd']:.2f} SD, PSI {last['psi']:.3g} (noise level {last['psi_null']:.3g})"
        )
        return pd.DataFrame(
            [
                {
                    "check": "reward drift (last checkpoint)",
                    "value": last["wasserstein"],
                    "threshold": f"KS p < {self.alpha:g} and normed Wasserstein >= {self.wasserstein_threshold:g}: warn",
                    "verdict": verdict,
                    "detail": detail if verdict != "n/a" else f"insufficient data (< {self.min_samples} samples)",
                }
            ]
        )

    def plot(self, ax=None, kind: str = "box"):
        """Reward distribution per checkpoint (``kind="box"`` or ``"ecdf"``); drifted checkpoints in red."""
        import matplotlib.pyplot as plt

        if kind not in ("box", "ecdf"):
            raise ValueError(f"kind must be 'box' or 'ecdf', got {kind!r}")
        if ax is None:
            _, ax = plt.subplots(figsize=(max(5, 0.9 * len(self.table) + 2), 3.8))
        order = self.table["checkpoint"].tolist()
        status = dict(zip(self.table["checkpoint"], self.table["status"]))
        colors = {"reference": "tab:blue", "ok": "tab:gray", "drift": "tab:red", "insufficient data": "lightgray"}
        groups = [self.samples.loc[self.samples["checkpoint"] == c, "score"].to_numpy() for c in order]
        if kind == "box":
            bp = ax.boxplot(groups, patch_artist=True, showmeans=True)
            for patch, c in zip(bp["boxes"], order):
                patch.set_facecolor(colors[status[c]])
                patch.set_alpha(0.6)
            ax.set_xticks(np.arange(1, len(order) + 1))
            ax.set_xticklabels([f"{c}\n(n={len(g)})" for c, g in zip(order, groups)], fontsize="small")
            ax.set_ylabel("reward")
        else:
            for c, g in zip(order, groups):
                if g.size:
                    xs = np.sort(g)
                    ax.step(
                        xs,
                        np.arange(1, xs.size + 1) / xs.size,
                        where="post",
                        color=colors[status[c]],
                        alpha=0.9 if status[c] != "ok" else 0.5,
                        label=f"{c} ({status[c]})",
                    )
            ax.set_xlabel("reward")
            ax.set_ylabel("ECDF")
            ax.legend(fontsize="small")
        ax.set_title(f"Reward per checkpoint (red: drift vs {self.reference})")
        return ax

    def plot_trend(self, ax=None):
        """Mean reward with its CI against step (or checkpoint order)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        t = self.table
        x = t["step"].to_numpy(dtype=float) if t["step"].notna().all() else np.arange(len(t), dtype=float)
        ax.errorbar(
            x, t["mean"], yerr=[t["mean"] - t["mean_ci_low"], t["mean_ci_high"] - t["mean"]], marker="o", capsize=3
        )
        for xi, yi, s in zip(x, t["mean"], t["status"]):
            if s == "drift":
                ax.plot(xi, yi, "o", color="tab:red", ms=10, mfc="none")
        ax.set_xlabel("step" if t["step"].notna().all() else "checkpoint")
        ax.set_ylabel("mean reward")
        ax.set_title("Mean reward per checkpoint (circled: drift)")
        return ax


def reward_drift(
    scores: Any,
    checkpoints: Any,
    steps: Any = None,
    reference: str | None = None,
    min_samples: int = 30,
    n_bins: int = 10,
    *,
    alpha: float = 0.05,
    wasserstein_threshold: float = 0.1,
    ci: float = 0.95,
    adjust: str = "none",
) -> DriftResult:
    """Compare the reward distribution of every checkpoint with a reference checkpoint.

    Parameters
    ----------
    scores : array-like
        One reward per policy sample (NaN scores are dropped and counted in ``n_dropped``).
    checkpoints : array-like
        The checkpoint of each sample (strings; numbers are converted).
    steps : array-like, optional
        The step of each sample; checkpoints are ordered by step (else by first appearance).
    reference : str, optional
        The reference checkpoint (default: the first one in that order).
    min_samples : int
        Checkpoints (or a reference) with fewer finite scores get status ``"insufficient data"``.
    n_bins : int
        Number of reference-quantile bins for PSI.
    alpha, wasserstein_threshold : float
        The drift rule: ``ks_p_adj < alpha`` and ``wasserstein >= wasserstein_threshold``.
    adjust : {"none", "holm"}
        Multiple-comparison adjustment of the KS p-values across compared checkpoints
        (default none: one decision per checkpoint, as in Evidently/NannyML).

    Returns
    -------
    DriftResult
        ``table`` columns: ``checkpoint, step, n, n_dropped, mean, mean_ci_low,
        mean_ci_high, std, q05, q25, q50, q75, q95, mean_shift, mean_shift_ci_low,
        mean_shift_ci_high, mean_shift_sd, ks_stat, ks_p, ks_p_adj, wasserstein,
        psi, psi_null, psi_band, direction, status``.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    ck = _as_labels(checkpoints, "checkpoints", s.size)
    st = _as_steps(steps, s.size)
    if isinstance(min_samples, bool) or not isinstance(min_samples, numbers.Integral) or min_samples < 2:
        raise ValueError(f"min_samples must be an integer >= 2, got {min_samples!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if not wasserstein_threshold >= 0:
        raise ValueError(f"wasserstein_threshold must be >= 0, got {wasserstein_threshold!r}")
    if adjust not in ("holm", "none"):
        raise ValueError(f"adjust must be 'holm' or 'none', got {adjust!r}")
    if s.size == 0:
        raise ValueError("scores is empty")
    order, step_of = _order_checkpoints(ck, st)
    if reference is None:
        reference = order[0]
    reference = str(reference)
    if reference not in order:
        raise ValueError(f"reference checkpoint {reference!r} not found; checkpoints: {order}")

    groups = {c: s[ck == c] for c in order}
    ref_all = groups[reference]
    ref = ref_all[np.isfinite(ref_all)]
    ref_ok = ref.size >= min_samples
    notes = []
    if not ref_ok:
        notes.append(
            f"reference {reference!r} has {ref.size} finite scores (< min_samples={min_samples}): no checkpoint is tested"
        )
    rows = []
    for c in order:
        g_all = groups[c]
        g = g_all[np.isfinite(g_all)]
        row: dict[str, Any] = {
            "checkpoint": c,
            "step": step_of.get(c, float("nan")),
            "n": int(g.size),
            "n_dropped": int(g_all.size - g.size),
        }
        enough = g.size >= min_samples
        row["mean"] = float(g.mean()) if g.size else float("nan")
        row["mean_ci_low"], row["mean_ci_high"] = _t_interval(g, ci) if enough else (float("nan"), float("nan"))
        row["std"] = float(g.std(ddof=1)) if g.size > 1 else float("nan")
        qs = np.quantile(g, QUANTILES) if enough else [float("nan")] * len(QUANTILES)
        for q, v in zip(QUANTILES, qs):
            row[f"q{int(round(100 * q)):02d}"] = float(v)
        nan_stats = dict(
            mean_shift=np.nan,
            mean_shift_ci_low=np.nan,
            mean_shift_ci_high=np.nan,
            mean_shift_sd=np.nan,
            ks_stat=np.nan,
            ks_p=np.nan,
            wasserstein=np.nan,
            psi=np.nan,
            psi_null=np.nan,
        )
        if c == reference:
            row.update(nan_stats, status="reference" if ref_ok else "insufficient data")
        elif not (enough and ref_ok):
            row.update(nan_stats, status="insufficient data")
        else:
            lo, hi, _ = _welch_interval(g, ref, ci)
            shift = float(g.mean() - ref.mean())
            ref_sd = float(ref.std(ddof=1))
            ks = stats.ks_2samp(ref, g)
            row.update(
                mean_shift=shift,
                mean_shift_ci_low=lo,
                mean_shift_ci_high=hi,
                mean_shift_sd=shift / ref_sd if ref_sd > 0 else np.nan,
                ks_stat=float(ks.statistic),
                ks_p=float(ks.pvalue),
                wasserstein=normed_wasserstein(ref, g),
                status="pending",
            )
            bins = psi_bins(ref, g, n_bins)
            row["psi"] = float(bins["term"].sum())
            row["psi_null"] = (len(bins) - 1) * (1 / ref.size + 1 / g.size)
        rows.append(row)
    table = pd.DataFrame(rows)
    pend = (table["status"] == "pending").to_numpy()
    p = table["ks_p"].to_numpy(dtype=float)
    table["ks_p_adj"] = _holm(np.where(pend, p, np.nan)) if adjust == "holm" else np.where(pend, p, np.nan)
    drift = pend & (table["ks_p_adj"].to_numpy() < alpha) & (table["wasserstein"].to_numpy() >= wasserstein_threshold)
    table.loc[pend, "status"] = np.where(drift[pend], "drift", "ok")
    table["psi_band"] = [_psi_band(v) for v in table["psi"]]
    table["direction"] = [
        ("up" if m > 0 else "down" if m < 0 else "none") if np.isfinite(m) else "" for m in table["mean_shift"]
    ]
    cols = [
        "checkpoint",
        "step",
        "n",
        "n_dropped",
        "mean",
        "mean_ci_low",
        "mean_ci_high",
        "std",
        "q05",
        "q25",
        "q50",
        "q75",
        "q95",
        "mean_shift",
        "mean_shift_ci_low",
        "mean_shift_ci_high",
        "mean_shift_sd",
        "ks_stat",
        "ks_p",
        "ks_p_adj",
        "wasserstein",
        "psi",
        "psi_null",
        "psi_band",
        "direction",
        "status",
    ]
    table = table[cols]
    if table["step"].isna().all():
        table["step"] = pd.array([pd.NA] * len(table), dtype="Int64")
    elif np.all(np.mod(table["step"].dropna(), 1) == 0):
        table["step"] = pd.array([None if np.isnan(v) else int(v) for v in table["step"]], dtype="Int64")
    samples = pd.DataFrame({"checkpoint": ck, "step": st if st is not None else np.nan, "score": s})
    samples = samples[np.isfinite(samples["score"])].reset_index(drop=True)
    return DriftResult(
        table,
        samples,
        reference,
        int(min_samples),
        int(n_bins),
        float(alpha),
        float(wasserstein_threshold),
        float(ci),
        notes,
    )


# --------------------------------------------------------------------------- Goodhart flag


def _per_checkpoint(values: Any, name: str) -> dict[str, np.ndarray]:
    """Mapping/Series checkpoint -> array (or scalar) of values; a DataFrame with checkpoint and value columns."""
    if isinstance(values, pd.Series):
        values = values.to_dict()
    if not isinstance(values, Mapping):
        raise TypeError(f"{name} must be a mapping checkpoint -> values (array or scalar), got {type(values).__name__}")
    out = {}
    for k, v in values.items():
        arr = np.atleast_1d(np.asarray(v, dtype=float)).reshape(-1)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            raise ValueError(f"{name}[{k!r}] has no finite values")
        out[str(k)] = arr
    if len(out) < 2:
        raise ValueError(f"{name} needs at least 2 checkpoints, got {len(out)}")
    return out


@dataclass
class GoodhartFlag:
    """Result of :func:`goodhart_flag`: per-checkpoint changes and the overall verdict.

    ``flagged`` is True when the reward rose significantly from the first to the
    last checkpoint while the gold signal did not rise significantly; ``gold_trend``
    is ``"falls"`` (significant decrease), ``"flat"`` or ``"rises"``.
    """

    table: pd.DataFrame
    flagged: bool
    reward_trend: str
    gold_trend: str
    reward_spearman: float
    gold_spearman: float
    first_flagged: str | None
    rule: str
    gold_name: str = "gold"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def verdicts(self) -> pd.DataFrame:
        """One graded check for the report: ``fail`` when flagged and the gold falls
        significantly, ``warn`` when flagged with a flat gold, else ``pass``. ``value``
        is the gold change from the first to the last checkpoint."""
        last = self.table.iloc[-1]
        verdict = ("fail" if self.gold_trend == "falls" else "warn") if self.flagged else "pass"
        return pd.DataFrame(
            [
                {
                    "check": f"Goodhart: reward up while {self.gold_name} flat or down",
                    "value": last["gold_change"],
                    "threshold": "reward rise significant and gold rise not: warn; gold falls significantly: fail",
                    "verdict": verdict,
                    "detail": self.summary(),
                }
            ]
        )

    def summary(self) -> str:
        t = self.table
        a, b = t.iloc[0], t.iloc[-1]
        verdict = "GOODHART FLAG" if self.flagged else "no Goodhart flag"
        return (
            f"{verdict}: reward {self.reward_trend} ({a['reward_mean']:.3g} -> {b['reward_mean']:.3g}), "
            f"{self.gold_name} {self.gold_trend} ({a['gold_mean']:.3g} -> {b['gold_mean']:.3g}) from {a['checkpoint']} to {b['checkpoint']}"
            + (f"; first flagged at {self.first_flagged}" if self.first_flagged else "")
        )

    def plot(self, ax=None):
        """Reward and gold means (with CIs) per checkpoint on twin axes; flagged checkpoints shaded."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 3.8))
        t = self.table
        x = t["step"].to_numpy(dtype=float) if t["step"].notna().all() else np.arange(len(t), dtype=float)
        ax.errorbar(
            x,
            t["reward_mean"],
            yerr=[t["reward_mean"] - t["reward_ci_low"], t["reward_ci_high"] - t["reward_mean"]],
            marker="o",
            color="tab:red",
            capsize=3,
            label="proxy reward",
        )
        ax.set_ylabel("mean proxy reward", color="tab:red")
        ax2 = ax.twinx()
        glo = (t["gold_mean"] - t["gold_ci_low"]).fillna(0)
        ghi = (t["gold_ci_high"] - t["gold_mean"]).fillna(0)
        ax2.errorbar(x, t["gold_mean"], yerr=[glo, ghi], marker="s", color="tab:green", capsize=3, label=self.gold_name)
        ax2.set_ylabel(f"mean {self.gold_name}", color="tab:green")
        for xi, f in zip(x, t["flag"]):
            if f:
                ax.axvspan(
                    xi - 0.3 * (np.diff(x).min() if len(x) > 1 else 1),
                    xi + 0.3 * (np.diff(x).min() if len(x) > 1 else 1),
                    color="tab:orange",
                    alpha=0.15,
                )
        ax.set_xlabel("step" if t["step"].notna().all() else "checkpoint")
        ax.set_title(
            ("Goodhart flag: " if self.flagged else "") + f"proxy reward vs {self.gold_name} (shaded: flagged)"
        )
        return ax


def goodhart_flag(
    reward_by_ckpt: Any,
    gold_by_ckpt: Any,
    steps: Any = None,
    *,
    ci: float = 0.95,
    gold_name: str = "gold",
) -> GoodhartFlag:
    """Flag the Goodhart pattern: proxy reward rises while a gold signal is flat or falls.

    Parameters
    ----------
    reward_by_ckpt : mapping checkpoint -> per-sample rewards
        Insertion order is the checkpoint order unless ``steps`` is given.
    gold_by_ckpt : mapping checkpoint -> per-sample gold values, or -> one number
        Per-sample gold scores (a gold RM, the demo's simulated judge, 0/1
        correctness on a golden set) or one aggregate per checkpoint (e.g. golden
        accuracy). Must cover the same checkpoints as the reward.
    steps : mapping checkpoint -> step, optional

    Rule
    ----
    For every checkpoint ``c`` after the first, ``reward_change = mean_c - mean_first``
    with a Welch ``ci`` interval; the same for gold (when gold has one value per
    checkpoint, its change has no interval and counts as "not rising" when it
    is ``<= 0``). Checkpoint ``c`` is flagged when the reward change's interval
    lies above 0 (significant rise) **and** the gold change is not significantly
    positive (its interval's lower end ``<= 0``). The overall flag is the flag of
    the **last** checkpoint (one planned comparison, so no multiplicity
    correction); ``gold_trend`` is ``"falls"`` when the gold interval lies below
    0. Spearman correlations of the means with the step are reported as
    descriptive trend measures (with 5 or 6 checkpoints they have little power).
    """
    rw = _per_checkpoint(reward_by_ckpt, "reward_by_ckpt")
    gd = _per_checkpoint(gold_by_ckpt, "gold_by_ckpt")
    missing = [c for c in rw if c not in gd]
    if missing:
        raise ValueError(f"gold_by_ckpt lacks checkpoints {missing} (it has {list(gd)})")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    order = list(rw)
    step_of = {c: float("nan") for c in order}
    if steps is not None:
        if not isinstance(steps, Mapping):
            raise TypeError("steps must be a mapping checkpoint -> step")
        step_of = {c: float(steps[c]) if c in steps else float("nan") for c in order}
        if any(np.isnan(v) for v in step_of.values()):
            raise ValueError(f"steps lacks checkpoints {[c for c in order if np.isnan(step_of[c])]}")
        order.sort(key=lambda c: step_of[c])
    c0 = order[0]
    rows = []
    for c in order:
        r, g = rw[c], gd[c]
        rlo, rhi = _t_interval(r, ci)
        glo, ghi = _t_interval(g, ci) if g.size > 1 else (np.nan, np.nan)
        row = {
            "checkpoint": c,
            "step": step_of[c],
            "n_reward": r.size,
            "reward_mean": r.mean(),
            "reward_ci_low": rlo,
            "reward_ci_high": rhi,
            "n_gold": g.size,
            "gold_mean": g.mean(),
            "gold_ci_low": glo,
            "gold_ci_high": ghi,
        }
        if c == c0:
            row.update(
                reward_change=0.0,
                reward_change_ci_low=np.nan,
                reward_change_ci_high=np.nan,
                gold_change=0.0,
                gold_change_ci_low=np.nan,
                gold_change_ci_high=np.nan,
                flag=False,
            )
        else:
            a, b = _welch_interval(r, rw[c0], ci)[:2]
            row.update(reward_change=r.mean() - rw[c0].mean(), reward_change_ci_low=a, reward_change_ci_high=b)
            gchange = g.mean() - gd[c0].mean()
            if g.size > 1 and gd[c0].size > 1:
                ga, gb = _welch_interval(g, gd[c0], ci)[:2]
            else:
                ga = gb = gchange
            row.update(gold_change=gchange, gold_change_ci_low=ga, gold_change_ci_high=gb)
            row["flag"] = bool(a > 0 and ga <= 0)
        rows.append(row)
    t = pd.DataFrame(rows)
    last = t.iloc[-1]
    reward_trend = (
        "rises" if last["reward_change_ci_low"] > 0 else ("falls" if last["reward_change_ci_high"] < 0 else "flat")
    )
    gold_trend = "rises" if last["gold_change_ci_low"] > 0 else ("falls" if last["gold_change_ci_high"] < 0 else "flat")
    x = t["step"].to_numpy() if not t["step"].isna().any() else np.arange(len(t))
    with np.errstate(invalid="ignore"):
        rs = float(stats.spearmanr(x, t["reward_mean"]).statistic) if len(t) > 2 else float("nan")
        gs = float(stats.spearmanr(x, t["gold_mean"]).statistic) if len(t) > 2 else float("nan")
    flagged = t.loc[t["flag"], "checkpoint"].tolist()
    rule = (
        f"flag checkpoint c when the {int(round(100 * ci))}% Welch interval of reward(c) - reward({c0}) lies above 0 "
        f"and the interval of {gold_name}(c) - {gold_name}({c0}) does not (lower end <= 0); overall flag = last checkpoint"
    )
    if t["step"].isna().all():
        t["step"] = pd.array([pd.NA] * len(t), dtype="Int64")
    return GoodhartFlag(
        t, bool(last["flag"]), reward_trend, gold_trend, rs, gs, flagged[0] if flagged else None, rule, gold_name
    )


# --------------------------------------------------------------------------- trigger phrases


def _phrase_counters(phrases: Any) -> dict[str, Callable[[str], int]]:
    from workbench.audits.features.text_features import agreement_count, count_phrases, flattery_count, hedge_count

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
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 3.8))
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
        return ax


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
    ck = _as_labels(checkpoints, "checkpoints", len(resp))
    st = _as_steps(steps, len(resp))
    order, step_of = _order_checkpoints(ck, st)
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
    from sklearn.feature_extraction.text import CountVectorizer

    from workbench.audits.features.triggers import TOKEN_PATTERN, benjamini_hochberg

    if isinstance(responses, str):
        raise TypeError("responses must be a sequence of strings, not a single string")
    resp = [str(r) if isinstance(r, str) else None for r in responses]
    if any(r is None for r in resp):
        raise TypeError("every response must be a string")
    ck = _as_labels(checkpoints, "checkpoints", len(resp))
    st = _as_steps(steps, len(resp))
    order, _ = _order_checkpoints(ck, st)
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


# --------------------------------------------------------------------------- pairs for relabelling


def checkpoint_pairs(
    samples: pd.DataFrame,
    scores: Any,
    reference: str,
    current: str,
    key: str = "prompt_id",
) -> pd.DataFrame:
    """Pair each prompt's reference-checkpoint response with its current-checkpoint response.

    Returns a DataFrame with ``id`` (``"<reference id>|<current id>"``),
    ``prompt``, ``response_a`` (reference), ``response_b`` (current),
    ``score_a``, ``score_b`` and ``key``, ready for
    :func:`workbench.data.relabel.export_relabel_queue`: a human says which answer is
    better, so the drift can be checked against people rather than the RM.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    if len(samples) != s.size:
        raise ValueError(f"scores has {s.size} entries for {len(samples)} samples")
    if key not in samples.columns:
        raise ValueError(f"samples have no {key!r} column to match prompts across checkpoints (pass key=...)")
    df = samples.assign(_score=s)
    a = df[df["checkpoint"] == reference]
    b = df[df["checkpoint"] == current]
    for name, part in ((reference, a), (current, b)):
        if part.empty:
            raise ValueError(f"no samples for checkpoint {name!r}")
        if part[key].duplicated().any():
            raise ValueError(f"checkpoint {name!r} has several samples for one {key}")
    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    return pd.DataFrame(
        {
            "id": (m["id_a"].astype(str) + "|" + m["id_b"].astype(str)).to_numpy(dtype=object),
            key: m[key].to_numpy(),
            "prompt": m[key if key == "prompt" else "prompt_a"].to_numpy(dtype=object),
            "response_a": m["response_a"].to_numpy(dtype=object),
            "response_b": m["response_b"].to_numpy(dtype=object),
            "score_a": m["_score_a"].to_numpy(),
            "score_b": m["_score_b"].to_numpy(),
            "checkpoint_a": reference,
            "checkpoint_b": current,
        }
    )
