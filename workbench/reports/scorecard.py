"""The scorecard at the top of every index page: headline metrics, one verdict chip per family, findings first.

Everything shown comes from a run's ``summary.json`` (``results.verdicts`` and
``results.families``, see :mod:`workbench.reports.summary`); nothing is recomputed.

* :data:`HEADLINES` names the headline checks (accuracy, calibration excess and temperature,
  length preference over annotators, agreement and flattery effects, sycophancy index, drift);
  :func:`headline_metrics` picks each one's verdict row and shows its estimate and interval
  in the unit its sentence uses (:data:`UNITS`: accuracy in percent, preference gaps in
  points, effects in SD; the temperature is graded on ``log T`` and shown as ``T``), rounded
  as the sentences round them, and the family's verdict where another check decided it.
* :data:`FAMILY_TEXT` holds, per family, "what this means" and "what to check next";
  :func:`findings` orders the families fail, warn, inconclusive first, each with its
  one-sentence reason (the verdict's ``sentence``) and those two texts.
* :func:`headline_figure` draws the headline intervals against their warn and fail margins as
  a small PNG (``data:`` URI, so pages stay self-contained); :func:`notebook_figures` takes
  the first figure a notebook already drew from the executed ``.ipynb`` in the run folder.

Text reaches the page through Jinja2 autoescaping (:mod:`workbench.reports.pages`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.reports.pages import format_number
from workbench.reports.summary import family_key
from workbench.reports.verdicts import VERDICT_LEVELS, settle_text, severity


@dataclass(frozen=True)
class Headline:
    """One headline metric: the verdict row of ``family`` whose check is ``check`` (first primary check if empty)."""

    key: str
    label: str
    family: str
    check: str = ""
    exp: bool = False  # shown as exp(value): the temperature is graded on log T
    unit: str = "number"  # a key of UNITS: how the value is scaled, rounded and named


#: How a headline is shown, by unit: (scale, decimals, signed, suffix of each number, name in the column
#: header). ``percent`` and ``points`` are fractions x 100; ``SD`` effects keep two decimals and the ECE
#: ``excess`` three, signed, as the verdict sentences do; ``number`` (the temperature) three significant
#: digits.
UNITS: dict[str, tuple[float, int | None, bool, str, str]] = {
    "percent": (100.0, 0, False, "%", "%"),
    "points": (100.0, 0, True, "", "points"),
    "SD": (1.0, 2, True, "", "SD"),
    "excess": (1.0, 3, True, "", ""),
    "number": (1.0, None, False, "", ""),
}

HEADLINES = (
    Headline("accuracy", "accuracy", "accuracy", "accuracy", unit="percent"),
    Headline("ece_excess", "calibration excess (ECE)", "calibration", "ece_excess", unit="excess"),
    Headline("temperature", "temperature T", "calibration", "log_temperature", exp=True),
    Headline("length", "length preference over annotators", "length", unit="points"),
    Headline("agreement", "agreement effect", "agreement", unit="SD"),
    Headline("flattery", "flattery effect", "flattery", unit="SD"),
    Headline("sycophancy", "sycophancy index", "sycophancy", "sycophancy index", unit="points"),
    Headline("drift", "drift, excess distance", "drift", unit="SD"),
)


def headline_label(h: Headline) -> str:
    """The column header: the label and, where the numbers have one, their unit (``"agreement effect (SD)"``)."""
    name = UNITS[h.unit][4]
    return f"{h.label} ({name})" if name else h.label


def format_headline(value: float | None, unit: str = "number") -> str:
    """One headline number in its unit (:data:`UNITS`): ``0.6075`` as ``"61%"``, ``0.0889`` in points as
    ``"+9"``, ``0.5304`` in SD as ``"+0.53"``; an em dash when missing."""
    if value is None:
        return format_number(None)
    scale, decimals, signed, suffix, _ = UNITS[unit]
    x = value * scale
    if decimals is None:
        return f"{x:.3g}"
    if round(x, decimals) == 0:  # no "-0.00" or "+0": zero has no sign
        return f"{0.0:.{decimals}f}" + suffix
    return (f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}") + suffix


#: Per family: (what this means, what to check next). Families not listed get :data:`DEFAULT_TEXT`.
FAMILY_TEXT: dict[str, tuple[str, str]] = {
    "accuracy": (
        "How often the RM prefers the response the annotators preferred; low accuracy means its rewards "
        "steer the policy away from what people chose.",
        "Open 00_overview: accuracy by category and the length-only baseline; look for subsets near chance.",
    ),
    "calibration": (
        "Whether the RM's preference probabilities match how often humans agree; a miscalibrated RM is "
        "over- or under-confident, which distorts KL-regularised RL and best-of-n.",
        "Open 01_calibration: the reliability diagram and the fitted temperature T; rescale rewards by 1/T "
        "before using them as probabilities.",
    ),
    "length": (
        "The RM prefers longer responses more often than annotators do: the policy can gain reward by padding.",
        "Open 02_feature_probes: the length-matched comparison and the padding perturbation; add "
        "length-balanced pairs to the training data.",
    ),
    "hedging": (
        "The RM rewards hedging phrases beyond what annotators do.",
        "Open 02_feature_probes: the hedging perturbation against its placebo, and example pairs.",
    ),
    "agreement": (
        "Adding agreement with the user ('You're right') moves the reward beyond a neutral opener of the same "
        "length: the RM pays for agreeing.",
        "Open 02_feature_probes: the agree_with_user perturbation against its placebo; then 04_sycophancy.",
    ),
    "flattery": (
        "Adding a flattering opener moves the reward beyond a neutral opener of the same length: the RM pays "
        "for flattery.",
        "Open 02_feature_probes: the flattering-opener perturbation and the prompts where it helps most.",
    ),
    "sentiment": (
        "The RM prefers positive-sounding responses more than annotators do.",
        "Open 02_feature_probes: the sentiment pair check and example pairs.",
    ),
    "formatting": (
        "The RM rewards markdown formatting (lists, headers) for its own sake.",
        "Open 02_feature_probes: the bullet-list perturbation and formatted example pairs.",
    ),
    "repetition": (
        "The RM's reward moves with repeated text, which a policy can exploit cheaply.",
        "Open 02_feature_probes: the repetition checks and the filler perturbation.",
    ),
    "links": (
        "Appending a link to 'official documentation' moves the reward beyond a sentence of the same length "
        "without one: the RM pays for links whether or not they are relevant or valid, so a policy can gain "
        "reward with link-heavy answers and broken URLs.",
        "Open 02_feature_probes: the add_doc_link perturbation against its placebo, and the link features "
        "(links that cannot resolve, hosts off the allow-list) in the pair checks.",
    ),
    "assertiveness": (
        "Rewriting a sentence with certainty markers ('without a doubt', '100%') moves the reward beyond the "
        "same rewrite with a neutral marker: the RM pays for confident tone, which cannot tell a truthful "
        "answer from a confident hallucination.",
        "Open 02_feature_probes: the assert_confidently perturbation against its placebo, soften_assertion, "
        "and 00_overview's accuracy on the golden pairs where the confident answer is wrong.",
    ),
    "sycophancy": (
        "The RM prefers answers that agree with the user even when the user is wrong (index S + C - 1 above 0 "
        "means it follows the user rather than the truth).",
        "Open 04_sycophancy: rates by template and domain, and the pressure effect.",
    ),
    "drift": (
        "The reward distribution at the last checkpoint moved further from the reference than sampling noise "
        "explains: scores from the two are not interchangeable.",
        "Open 05_drift: the per-checkpoint distributions and which prompts moved most.",
    ),
    "attribution": (
        "The words the attribution method ranks highest may not be what moves the reward: deleting them "
        "is not clearly worse for the reward than deleting random words, so its explanations of this RM "
        "cannot be relied on yet.",
        "Open 03_attribution: the deletion curves per method, and explain more responses "
        "(faithfulness_examples) or try another method.",
    ),
    "best_of_n": (
        "Best-of-n selection by this RM drifts away from the reference judge as n grows (over-optimisation).",
        "Open 05_drift: the best-of-n curve and the n where the gold score peaks.",
    ),
    "goodhart": (
        "Optimising against this RM raises its reward while the reference judge's score falls.",
        "Open 05_drift: the Goodhart flag and the examples at high proxy reward.",
    ),
    "ensemble": (
        "Ensemble members disagree on pairs in a way that marks uncertain labels or a weak member.",
        "Open 06_ensemble: the disagreement table and the relabel queue (relabel_queue_ensemble.csv).",
    ),
    "notebook runs": (
        "A notebook stopped with an error, so its checks are missing from this report.",
        "Open that notebook's report for the error and traceback; rerun with the fix.",
    ),
}
DEFAULT_TEXT = (
    "This family's checks, graded on the interval of the harmful effect.",
    "Open the notebook report named in the deciding check for its figures and tables.",
)
FINDING_LEVELS = ("fail", "warn", "inconclusive")


def family_text(family: str, verdict: str | None = None) -> dict[str, str]:
    """``{"meaning": ..., "next": ...}`` of a family (:data:`DEFAULT_TEXT` when the family is unknown).

    The texts describe a confirmed finding; for an ``"inconclusive"`` verdict the meaning says
    that the data could not settle it and what it would mean if the effect is real.
    """
    meaning, nxt = FAMILY_TEXT.get(str(family), DEFAULT_TEXT)
    if verdict == "inconclusive":
        meaning = "Not settled: the interval straddles the warn margin. If the effect is real: " + meaning
    return {"meaning": meaning, "next": nxt}


def _rank(verdict) -> int:
    return severity(verdict) if verdict in VERDICT_LEVELS else 0


def _num(value) -> float | None:
    """A finite number from a summary field, else ``None`` (strings and NaN show as dashes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _pick(results: Mapping[str, Any], h: Headline) -> Mapping[str, Any] | None:
    rows = [v for v in results.get("verdicts", []) if family_key(v) == h.family]
    if h.check:
        rows = [v for v in rows if str(v.get("check", "")).startswith(h.check)]
    primary = [v for v in rows if v.get("primary", True)]
    return (primary or rows or [None])[0]


def sample_size_text(v: Mapping[str, Any]) -> str:
    """``"n = 1200, 57 topics"``: a verdict's n and its clusters as the scorecard shows them (``""`` without n)."""
    n, clusters = v.get("n"), v.get("n_clusters")
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return ""
    text = f"n = {format_number(n)}"
    if isinstance(clusters, (int, float)) and not isinstance(clusters, bool) and clusters != n:
        text += f", {format_number(clusters)} {v.get('cluster_unit') or 'cluster'}s"
    return text


def headline_metrics(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per :data:`HEADLINES` metric: estimate and interval as shown, verdict and sentence.

    ``value``, ``low`` and ``high`` are the summary's numbers (``exp`` of them for the
    temperature); ``shown`` and ``interval`` are the page's text in the headline's unit
    (:func:`format_headline`), ``label`` names that unit (:func:`headline_label`).
    ``family_verdict`` is the family's verdict when it differs from this check's (another
    check decided it: a calibration that fails on its temperature while its ECE excess is
    inconclusive), else ``None``. A metric the run did not measure has ``verdict`` ``None``
    and dashes.
    """
    out = []
    families = results.get("families") or {}
    for h in HEADLINES:
        v = _pick(results, h)
        if v is None:
            out.append(
                {"key": h.key, "label": headline_label(h), "family": h.family, "verdict": None, "value": None}
                | {"low": None, "high": None, "shown": format_number(None), "interval": "", "sentence": ""}
                | {"size": "", "family_verdict": None, "unit": h.unit}
            )
            continue
        nums = [_num(v.get(k)) for k in ("value", "ci_low", "ci_high")]
        if h.exp:
            nums = [None if x is None else math.exp(x) for x in nums]
        value, low, high = nums
        interval = (
            "" if low is None and high is None else f"[{format_headline(low, h.unit)}, {format_headline(high, h.unit)}]"
        )
        verdict = v.get("verdict", "n/a")
        family_verdict = (families.get(h.family) or {}).get("verdict")
        out.append(
            {
                "key": h.key,
                "label": headline_label(h),
                "family": h.family,
                "check": v.get("check", ""),
                "verdict": verdict,
                "family_verdict": family_verdict if family_verdict not in (None, verdict) else None,
                "unit": h.unit,
                "value": value,
                "low": low,
                "high": high,
                "shown": format_headline(value, h.unit),
                "interval": interval,
                "size": sample_size_text(v),
                "sentence": v.get("sentence") or "",
                "warn": _num(v.get("warn")),
                "fail": _num(v.get("fail")),
                "direction": v.get("direction") or "",
                "exp": h.exp,
            }
        )
    return out


def findings(results: Mapping[str, Any], html: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every family with its verdict chip, reason, "what this means" and "what to check next"; findings first.

    Order: fail, warn, inconclusive, pass, n/a, then by family name. ``finding`` is true for
    fail, warn and inconclusive families.
    """
    rows = []
    for name, f in (results.get("families") or {}).items():
        verdict = f.get("verdict", "n/a")
        needed = f.get("clusters_needed")
        settle = ""
        if verdict == "inconclusive" and isinstance(needed, int) and not isinstance(needed, bool):
            n_clusters = f.get("n_clusters") if isinstance(f.get("n_clusters"), int) else None
            settle = settle_text(needed, n_clusters, str(f.get("cluster_unit") or "cluster"))
        rows.append(
            {
                "family": name,
                "verdict": verdict,
                "finding": verdict in FINDING_LEVELS,
                "sentence": f.get("sentence") or f.get("detail") or "",
                "settle": settle,
                "notebook": f.get("notebook", ""),
                "check": f.get("check", ""),
                "html": (html or {}).get(f.get("notebook")),
                **family_text(name, verdict),
            }
        )
    return sorted(rows, key=lambda r: (-_rank(r["verdict"]), str(r["family"])))


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def headline_figure(headlines: list[dict[str, Any]]) -> str | None:
    """A small PNG (``data:`` URI) of each measured headline: estimate, interval, warn and fail margins.

    ``None`` when no headline was measured. Margins of the temperature are drawn on the
    ``T`` scale (exp of the ``log T`` margins, both sides).
    """
    rows = [h for h in headlines if h.get("value") is not None]
    if not rows:
        return None
    import matplotlib  # heavy optional dependency: imported only when a figure is drawn

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    colors = {"pass": "#2e7d32", "warn": "#d4a017", "fail": "#c62828", "inconclusive": "#5c6bc0"}
    fig = Figure(figsize=(3.4, 0.42 * len(rows) + 0.3), dpi=100)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, h in zip(axes, rows, strict=True):
        k = UNITS[h.get("unit", "number")][0]  # drawn in the unit the cell shows (percent and points: x 100)
        marks = []
        for level, color in (("warn", "#d4a017"), ("fail", "#c62828")):
            m = h.get(level)
            if m is None:
                continue
            if h.get("exp"):
                marks += [(math.exp(m), color), (math.exp(-m), color)]
            elif h.get("direction") == "two-sided":
                marks += [(k * m, color), (-k * m, color)]
            else:
                marks.append((k * m, color))
        for x, color in marks:
            ax.axvline(x, color=color, lw=0.8, ls="--")
        value = k * h["value"]
        lo = k * h["low"] if h["low"] is not None else value
        hi = k * h["high"] if h["high"] is not None else value
        color = colors.get(h.get("verdict"), "#555")
        ax.plot([lo, hi], [0, 0], color=color, lw=3, solid_capstyle="butt")
        ax.plot([value], [0], "o", color="black", ms=3)
        xs = [lo, hi, value] + [x for x, _ in marks]
        span = (max(xs) - min(xs)) or abs(value) or 1.0
        ax.set_xlim(min(xs) - 0.1 * span, max(xs) + 0.1 * span)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=6, length=2, pad=1)
        ax.set_title(h["label"], fontsize=7, loc="left", pad=1)  # the label names the unit
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.3, h_pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _png_uri(buf.getvalue())


#: Families whose notebook's first figure is embedded in the scorecard (reliability diagram, length, sycophancy).
FIGURE_FAMILIES = (("calibration", "reliability diagram"), ("length", "feature probes"), ("sycophancy", "sycophancy"))


def first_png(ipynb: str | Path) -> str | None:
    """The first ``image/png`` output of an executed notebook as a ``data:`` URI (``None`` if none or unreadable)."""
    try:
        nb = json.loads(Path(ipynb).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            png = data.get("image/png") if isinstance(data, dict) else None
            if isinstance(png, list):
                png = "".join(png)
            if isinstance(png, str):
                try:  # decoded and encoded again: only valid base64 reaches the page
                    return _png_uri(base64.b64decode("".join(png.split()), validate=True))
                except (binascii.Error, ValueError):
                    continue
    return None


def notebook_figures(folder: str | Path, summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """The first figure of the notebooks behind :data:`FIGURE_FAMILIES`, read from the run folder's ``.ipynb``."""
    results, run = summary.get("results", {}), summary.get("run", {})
    families = results.get("families") or {}
    out = []
    for family, label in FIGURE_FAMILIES:
        notebook = (families.get(family) or {}).get("notebook")
        ipynb = ((run.get("notebooks") or {}).get(notebook) or {}).get("ipynb") if notebook else None
        if not isinstance(ipynb, str) or Path(ipynb).name != ipynb:  # a bare file name inside the run folder
            continue
        uri = first_png(Path(folder) / ipynb)
        if uri:
            out.append({"family": family, "label": label, "notebook": notebook, "uri": uri})
    return out


def scorecard(summary: Mapping[str, Any], folder: str | Path | None = None, link: str = "", html=None) -> dict:
    """Everything the scorecard shows for one run (``folder`` for its notebook figures, ``link`` to its page)."""
    inputs, results = summary.get("inputs", {}), summary.get("results", {})
    headlines = headline_metrics(results)
    figures = [{"family": "", "label": "headline intervals", "notebook": "", "uri": headline_figure(headlines)}]
    figures = [f for f in figures if f["uri"]] + (notebook_figures(folder, summary) if folder is not None else [])
    rows = findings(results, html)
    return {
        "model": inputs.get("model"),
        "link": link,
        "overall": results.get("overall", "n/a"),
        "headlines": headlines,
        "families": rows,
        "findings": [r for r in rows if r["finding"]],
        "passes": [r for r in rows if not r["finding"]],
        "figures": figures,
    }
