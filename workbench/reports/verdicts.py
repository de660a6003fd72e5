"""Verdicts and headline metrics that notebooks hand to the report builder.

A notebook calls :func:`publish` once per audit section. The values travel
inside the executed notebook as an output of a private MIME type, which HTML
export ignores and :func:`collect` reads back, so the report needs no side files
and a notebook run by hand in JupyterLab behaves exactly like one run by the CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.reports.grading import grade_interval

MIME = "application/vnd.rm-workbench.summary+json"
VERDICT_LEVELS = ("pass", "inconclusive", "warn", "fail", "n/a")
_SEVERITY = {"n/a": 0, "pass": 1, "inconclusive": 2, "warn": 3, "fail": 4}


@dataclass
class Verdict:
    """One graded check: the estimate, its interval, the margins, the sample size and the outcome.

    The first six fields are what every check has; a check graded on its interval (see
    :mod:`workbench.reports.grading`) also carries the interval (``ci_low``, ``ci_high`` at
    level ``ci_level``), the harmful ``direction``, the ``warn`` and ``fail`` margins, ``n``
    (pairs or items) and ``n_clusters`` (the independent units resampled, named by
    ``cluster_unit``), ``clusters_needed`` when inconclusive, and ``sentence``: one plain
    sentence a stakeholder can read. ``family`` groups checks into one family verdict;
    ``primary`` checks decide it, the others are shown but do not grade the family.
    """

    section: str
    check: str
    value: float | None
    threshold: str
    verdict: str
    detail: str = ""
    family: str = ""
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    direction: str = ""
    warn: float | None = None
    fail: float | None = None
    n: int | None = None
    n_clusters: int | None = None
    cluster_unit: str = ""
    clusters_needed: int | None = None
    sentence: str = ""
    primary: bool = True

    def __post_init__(self):
        if self.verdict not in VERDICT_LEVELS:
            raise ValueError(f"verdict must be one of {VERDICT_LEVELS}, got {self.verdict!r}")


def _fmt(x: float) -> str:
    return f"{x:.3g}"


#: beyond this many times the current clusters, "how many would settle it" is not a useful number
SETTLE_CAP = 10


def settle_text(needed: int | None, n_clusters: int | None, unit: str = "cluster") -> str:
    """How many clusters would settle an inconclusive check, in words ("" when unknown).

    Past :data:`SETTLE_CAP` times the current number the estimate sits on the warn margin and
    more data of the same kind will not settle it in practice; the text says so instead of
    quoting a five-digit number.
    """
    if not needed:
        return ""
    if n_clusters and needed > SETTLE_CAP * n_clusters:
        return (
            f"the estimate sits close to the warn margin: more than {SETTLE_CAP}x the current "
            f"{n_clusters} {unit}s would be needed to settle it"
        )
    return f"about {needed} {unit}s would settle it"


def graded_verdict(
    section: str,
    check: str,
    estimate: float,
    ci_low: float,
    ci_high: float,
    *,
    warn: float,
    fail: float,
    direction: str = "higher",
    ci: float = 0.95,
    n: int | None = None,
    n_clusters: int | None = None,
    cluster_unit: str = "prompt",
    family: str = "",
    sentence: str = "",
    detail: str = "",
    primary: bool = True,
) -> Verdict:
    """A :class:`Verdict` graded on its interval by :func:`workbench.reports.grading.grade_interval`."""
    g = grade_interval(estimate, ci_low, ci_high, warn=warn, fail=fail, direction=direction, n_clusters=n_clusters)
    side = {"higher": ">", "lower": "<", "two-sided": "|x| >"}[direction]
    threshold = f"warn {side} {_fmt(warn)}, fail {side} {_fmt(fail)} ({ci:.0%} interval)"
    if g.verdict == "inconclusive" and g.clusters_needed:
        detail = (detail + " " if detail else "") + settle_text(g.clusters_needed, n_clusters, cluster_unit)
    return Verdict(
        section=section,
        check=check,
        value=_clean(estimate),
        threshold=threshold,
        verdict=g.verdict,
        detail=detail,
        family=family,
        ci_low=_clean(ci_low),
        ci_high=_clean(ci_high),
        ci_level=ci,
        direction=direction,
        warn=warn,
        fail=fail,
        n=None if n is None else int(n),
        n_clusters=None if n_clusters is None else int(n_clusters),
        cluster_unit=cluster_unit,
        clusters_needed=g.clusters_needed,
        sentence=sentence,
        primary=primary,
    )


def verdict_table(verdicts: Iterable[Verdict], columns: Iterable[str]) -> pd.DataFrame:
    """Verdicts as a table: one row per verdict, the given :class:`Verdict` fields as columns, in order."""
    cols = list(columns)
    return pd.DataFrame([[getattr(v, c) for c in cols] for v in verdicts], columns=cols)


def family_verdicts(verdicts: Iterable[Verdict | Mapping]) -> dict[str, str]:
    """One verdict per family: the worst of its primary checks (checks without a family use their section)."""
    out: dict[str, list[str]] = {}
    for v in verdicts:
        row = asdict(v) if isinstance(v, Verdict) else dict(v)
        if not row.get("primary", True):
            continue
        out.setdefault(row.get("family") or row.get("section", ""), []).append(row["verdict"])
    return {family: worst(levels) for family, levels in out.items()}


def grade(value: float, warn: float, fail: float, *, higher_is_worse: bool = True) -> str:
    """``pass``/``warn``/``fail`` of a point value against two thresholds (``n/a`` for NaN).

    Point grading; graded checks use :func:`graded_verdict`, which grades the interval.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    v = value if higher_is_worse else -value
    w, f = (warn, fail) if higher_is_worse else (-warn, -fail)
    return "fail" if v > f else "warn" if v > w else "pass"


def severity(verdict: str) -> int:
    """Rank of a verdict: ``n/a`` 0, ``pass`` 1, ``inconclusive`` 2, ``warn`` 3, ``fail`` 4."""
    if verdict not in _SEVERITY:
        raise ValueError(f"verdict must be one of {VERDICT_LEVELS}, got {verdict!r}")
    return _SEVERITY[verdict]


def worst(verdicts: Iterable[str]) -> str:
    """The most severe of several verdicts (``n/a`` if there are none)."""
    return max(verdicts, key=_SEVERITY.__getitem__, default="n/a")


def _clean(value):
    """JSON-safe, rounded numbers so summaries compare exactly between runs."""
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _as_verdicts(section: str, verdicts) -> list[Verdict]:
    if verdicts is None:
        return []
    if isinstance(verdicts, pd.DataFrame):
        verdicts = verdicts.to_dict("records")
    out = []
    for row in verdicts:
        if isinstance(row, Verdict):
            out.append(row)
            continue
        row = dict(row)
        extra = {k: _clean(row[k]) for k in CONTRACT_FIELDS if row.get(k) is not None}
        out.append(
            Verdict(
                section=str(row.get("section", section)),
                check=str(row["check"])
                + (f" [{row['feature']}]" if row.get("feature") not in (None, "") and "feature" in row else ""),
                value=_clean(row.get("value")),
                threshold=str(row.get("threshold", "")),
                verdict=str(row["verdict"]),
                detail=str(row.get("detail", row.get("note", "")) or ""),
                **extra,
            )
        )
    return out


#: The :class:`Verdict` fields beyond the first six (the interval-grading contract), in order.
CONTRACT_FIELDS = tuple(
    f.name for f in fields(Verdict) if f.name not in ("section", "check", "value", "threshold", "verdict", "detail")
)


def verdict_defaults() -> dict:
    """Every :class:`Verdict` field beyond the first five with its default (what an old-style verdict lacks)."""
    return {
        f.name: f.default
        for f in fields(Verdict)
        if f.name not in ("section", "check", "value", "threshold", "verdict")
    }


def publish(section: str, verdicts=None, metrics: Mapping | None = None) -> dict:
    """Attach verdicts and headline metrics of one audit section to the notebook's output."""
    payload = {
        "section": section,
        "verdicts": [_clean(asdict(v)) for v in _as_verdicts(section, verdicts)],
        "metrics": _clean(dict(metrics or {})),
    }
    try:
        from IPython.display import display

        display(
            {
                MIME: payload,
                "text/plain": f"[{len(payload['verdicts'])} verdicts of section {section!r} recorded for the report]",
            },
            raw=True,
        )
    except ImportError:  # pragma: no cover
        pass
    return payload


def collect(ipynb: str | Path) -> list[dict]:
    """All payloads :func:`publish` left in an executed notebook, in order."""
    path = Path(ipynb)
    if not path.exists():
        return []
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                payload = data[MIME]
                found.append(json.loads(payload) if isinstance(payload, str) else payload)
    return found
