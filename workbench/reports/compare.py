"""What changed between two audit runs: ``python -m workbench compare A B``.

A and B are report folders (holding ``summary.json``) or ``summary.json`` files.
Only the deterministic parts of the summaries are compared (``inputs`` and
``results``); timings never count as changes.

A verdict got **worse** when its severity rose (``pass``/``n/a`` < ``inconclusive`` <
``warn`` < ``fail``). A check that is new in B counts as worse if it is ``inconclusive``,
``warn`` or ``fail``; a check that disappeared is listed but is not a regression. The
same holds for the family verdicts (one per family, the worst of its primary checks);
the overall verdict is the worst family verdict. Each changed row shows the estimate and
its interval on both sides. Version 1 summaries are read in the version 2 layout
(:func:`~workbench.reports.summary.upgrade_summary`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workbench.reports.summary import load_summary, upgrade_summary

_RANK = {None: 0, "n/a": 0, "pass": 0, "inconclusive": 1, "warn": 2, "fail": 3}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _vkey(v: dict) -> tuple[str, str, str]:
    return (v["notebook"], v["section"], v["check"])


@dataclass
class Comparison:
    """Differences between run ``a`` (old) and run ``b`` (new)."""

    a: str
    b: str
    overall: tuple[str, str]
    metrics: pd.DataFrame  # metric, change (changed/added/removed), old, new, delta
    verdicts: (
        pd.DataFrame
    )  # change, notebook, section, check, old, new, old_value, new_value, old_ci, new_ci, threshold
    inputs: pd.DataFrame  # field, old, new
    notes: list[str] = field(default_factory=list)
    families: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAMILY_COLUMNS, dtype=object))

    @property
    def regressions(self) -> pd.DataFrame:
        """The verdict rows that got worse."""
        return self.verdicts[self.verdicts["change"] == "worse"]

    @property
    def family_regressions(self) -> pd.DataFrame:
        """The family verdicts that got worse."""
        return self.families[self.families["change"] == "worse"]

    @property
    def has_regression(self) -> bool:
        return (
            len(self.regressions) > 0
            or len(self.family_regressions) > 0
            or _rank(self.overall[1]) > _rank(self.overall[0])
        )

    def to_frame(self) -> pd.DataFrame:
        """Metric changes (the largest part of the comparison) as one table."""
        return self.metrics

    def to_text(self, max_rows: int = 200) -> str:
        """A plain-text report for the terminal (``-`` marks a value missing on one side)."""
        lines = [f"A: {self.a}", f"B: {self.b}", f"overall verdict: {self.overall[0]} -> {self.overall[1]}"]
        if not self.inputs.empty:
            lines += ["", "Inputs that differ:", _table(self.inputs, max_rows, 60)]
        if self.families.empty:
            lines += ["", "Family verdicts: no changes."]
        else:
            lines += ["", f"Family verdicts that changed ({len(self.families)}):", _table(self.families, max_rows, 40)]
        if self.verdicts.empty:
            lines += ["", "Verdicts: no changes."]
        else:
            lines += ["", f"Verdicts that changed ({len(self.verdicts)}):", _table(self.verdicts, max_rows, 50)]
        if self.metrics.empty:
            lines += ["", "Metrics: no changes."]
        else:
            lines += ["", f"Metrics that changed ({len(self.metrics)}):", _table(self.metrics, max_rows, 60)]
        lines += [""] + [f"note: {n}" for n in self.notes]
        regressions = len(self.regressions)
        lines.append(f"{regressions} verdict(s) got worse." if regressions else "No verdict got worse.")
        families = len(self.family_regressions)
        lines.append(f"{families} family verdict(s) got worse." if families else "No family verdict got worse.")
        return "\n".join(lines).rstrip() + "\n"


FAMILY_COLUMNS = [
    "change",
    "family",
    "old",
    "new",
    "old_check",
    "new_check",
    "old_value",
    "new_value",
    "old_ci",
    "new_ci",
]


def _rank(verdict) -> int:
    return _RANK.get(verdict, 0)


def _change(old: str | None, new: str | None) -> str:
    if new is None:
        return "removed"
    if _rank(new) > _rank(old):
        return "worse"
    if _rank(new) < _rank(old):
        return "better"
    return "added" if old is None else "changed"


def _ci(v: dict | None) -> str | None:
    """``[low, high]`` of a verdict (``None`` without an interval)."""
    if not v or (v.get("ci_low") is None and v.get("ci_high") is None):
        return None
    return f"[{_cell(v.get('ci_low'))}, {_cell(v.get('ci_high'))}]"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(frame: pd.DataFrame, max_rows: int, width: int) -> str:
    shown = frame.head(max_rows).apply(lambda col: col.map(_cell))
    text = shown.to_string(index=False, max_colwidth=width)
    if len(frame) > max_rows:
        text += f"\n... {len(frame) - max_rows} more"
    return text


def compare_summaries(a: dict | str | Path, b: dict | str | Path, *, tolerance: float = 0.0) -> Comparison:
    """Compare two summaries (dicts, ``summary.json`` files or report folders).

    ``tolerance``: numeric metrics whose absolute difference is at most this are
    treated as unchanged.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    name_a = str(a) if not isinstance(a, dict) else "A"
    name_b = str(b) if not isinstance(b, dict) else "B"
    sa = upgrade_summary(a) if isinstance(a, dict) else load_summary(a)
    sb = upgrade_summary(b) if isinstance(b, dict) else load_summary(b)
    ra, rb = sa["results"], sb["results"]

    metric_rows = []
    ma, mb = ra.get("metrics", {}), rb.get("metrics", {})
    for key in sorted(set(ma) | set(mb)):
        old, new = ma.get(key), mb.get(key)
        if key in ma and key in mb:
            x, y = _number(old), _number(new)
            if x is not None and y is not None:
                if x == y or abs(y - x) <= tolerance or (math.isnan(x) and math.isnan(y)):
                    continue
            elif old == new:
                continue
        x, y = _number(old), _number(new)
        change = "added" if key not in ma else "removed" if key not in mb else "changed"
        metric_rows.append(
            {
                "metric": key,
                "change": change,
                "old": old,
                "new": new,
                "delta": (y - x) if x is not None and y is not None else None,
            }
        )
    metrics = pd.DataFrame(metric_rows, columns=["metric", "change", "old", "new", "delta"], dtype=object)

    va = {_vkey(v): v for v in ra.get("verdicts", [])}
    vb = {_vkey(v): v for v in rb.get("verdicts", [])}
    verdict_rows = []
    for key in sorted(set(va) | set(vb)):
        old, new = va.get(key), vb.get(key)
        o = old["verdict"] if old else None
        n = new["verdict"] if new else None
        if o == n:
            continue
        verdict_rows.append(
            {
                "change": _change(o, n),
                "notebook": key[0],
                "section": key[1],
                "check": key[2],
                "old": o,
                "new": n,
                "old_value": old.get("value") if old else None,
                "new_value": new.get("value") if new else None,
                "old_ci": _ci(old),
                "new_ci": _ci(new),
                "threshold": (new or old).get("threshold", ""),
            }
        )
    verdicts = pd.DataFrame(
        verdict_rows,
        columns=[
            "change",
            "notebook",
            "section",
            "check",
            "old",
            "new",
            "old_value",
            "new_value",
            "old_ci",
            "new_ci",
            "threshold",
        ],
        dtype=object,
    )

    fa, fb = ra.get("families", {}), rb.get("families", {})
    family_rows = []
    for name in sorted(set(fa) | set(fb)):
        old, new = fa.get(name), fb.get(name)
        o = old["verdict"] if old else None
        n = new["verdict"] if new else None
        if o == n:
            continue
        family_rows.append(
            {
                "change": _change(o, n),
                "family": name,
                "old": o,
                "new": n,
                "old_check": old.get("check") if old else None,
                "new_check": new.get("check") if new else None,
                "old_value": old.get("value") if old else None,
                "new_value": new.get("value") if new else None,
                "old_ci": _ci(old),
                "new_ci": _ci(new),
            }
        )
    families = pd.DataFrame(family_rows, columns=FAMILY_COLUMNS, dtype=object)

    input_rows = []
    ia, ib = sa.get("inputs", {}), sb.get("inputs", {})
    for key in ("model", "model_fingerprint", "data", "seed", "data_hashes"):
        if ia.get(key) != ib.get(key):
            input_rows.append({"field": key, "old": ia.get(key), "new": ib.get(key)})
    inputs = pd.DataFrame(input_rows, columns=["field", "old", "new"], dtype=object)

    notes = []
    na, nb = set(ra.get("notebooks", {})), set(rb.get("notebooks", {}))
    if na - nb:
        notes.append(f"only in A: {', '.join(sorted(na - nb))}")
    if nb - na:
        notes.append(f"only in B: {', '.join(sorted(nb - na))}")
    return Comparison(
        name_a,
        name_b,
        (ra.get("overall", "n/a"), rb.get("overall", "n/a")),
        metrics,
        verdicts,
        inputs,
        notes,
        families,
    )


def main_compare(a: str, b: str, *, fail_on_regression: bool = False, tolerance: float = 0.0, out=None) -> int:
    """CLI body: print the comparison; return 1 on a regression when asked to, else 0."""
    result = compare_summaries(Path(a), Path(b), tolerance=tolerance)
    (out or sys.stdout).write(result.to_text())
    return 1 if fail_on_regression and result.has_regression else 0
