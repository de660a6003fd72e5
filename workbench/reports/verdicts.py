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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MIME = "application/vnd.rm-workbench.summary+json"
VERDICT_LEVELS = ("pass", "warn", "fail", "n/a")
_SEVERITY = {"n/a": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass
class Verdict:
    """One check: what was measured, against which threshold, with what outcome."""

    section: str
    check: str
    value: float | None
    threshold: str
    verdict: str
    detail: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICT_LEVELS:
            raise ValueError(f"verdict must be one of {VERDICT_LEVELS}, got {self.verdict!r}")


def grade(value: float, warn: float, fail: float, *, higher_is_worse: bool = True) -> str:
    """``pass``/``warn``/``fail`` of a value against two thresholds (``n/a`` for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    v = value if higher_is_worse else -value
    w, f = (warn, fail) if higher_is_worse else (-warn, -fail)
    return "fail" if v > f else "warn" if v > w else "pass"


def severity(verdict: str) -> int:
    """Rank of a verdict: ``n/a`` 0, ``pass`` 1, ``warn`` 2, ``fail`` 3."""
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
        out.append(
            Verdict(
                section=str(row.get("section", section)),
                check=str(row["check"])
                + (f" [{row['feature']}]" if row.get("feature") not in (None, "") and "feature" in row else ""),
                value=_clean(row.get("value")),
                threshold=str(row.get("threshold", "")),
                verdict=str(row["verdict"]),
                detail=str(row.get("detail", row.get("note", "")) or ""),
            )
        )
    return out


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
