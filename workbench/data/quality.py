"""The data-quality verdict: how many rows the loader skipped, and which pairs it flagged.

Real data sets have a few bad rows (HH-RLHF has transcripts with an empty final turn, for
example). The audits skip them by default and count them by reason; this module turns
those counts into one graded check, family ``"data_quality"``: the skipped share of the
rows read warns above 1% and fails above 10%. The share is a count over the whole file
the audit describes (a census, not a sample), so it has no sampling error: the check is
graded on the exact share (an interval of zero width, by
:func:`workbench.reports.verdicts.graded_verdict`), and a small clean file passes. The
Clopper-Pearson interval of the share, what the skip rate of the source the file was drawn
from could be, is shown in the detail. Kept rows with a flag (an HH-RLHF
pair whose chosen and rejected transcripts continue different conversations, repaired
transcripts) are counted beside it.

``data_quality(pairs).publish()`` hands the verdict and the counts to the report builder
(notebook 00 does this), so they reach the report and ``summary.json``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from scipy import stats

from workbench.data.doctor import skip_kind
from workbench.data.preferences import PreferenceSet
from workbench.reports.verdicts import Verdict, graded_verdict, publish, verdict_table

__all__ = ["SKIP_WARN", "SKIP_FAIL", "DataQuality", "data_quality", "clopper_pearson"]

SKIP_WARN = 0.01  # warn when more than 1% of the rows read were skipped
SKIP_FAIL = 0.10  # fail above 10%


def clopper_pearson(k: int, n: int, ci: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval of a binomial proportion ``k / n`` at level ``ci``."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    alpha = 1.0 - ci
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


@dataclass
class DataQuality:
    """Skipped and flagged rows of one loaded data set, and the graded data-quality check.

    Follows the audit-result contract (``to_frame``, ``summary``, ``verdicts``, ``plot``,
    ``publish``) without subclassing it (the data layer sits below the audits).
    """

    source: str
    n_read: int
    n_skipped: int
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    flagged_by_kind: dict[str, int] = field(default_factory=dict)
    n_flagged: int = 0
    ci: float = 0.95
    warn: float = SKIP_WARN
    fail: float = SKIP_FAIL

    section = "data_quality"

    @property
    def skipped_share(self) -> float:
        return self.n_skipped / self.n_read if self.n_read else float("nan")

    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.n_skipped, self.n_read, self.ci)

    def to_frame(self) -> pd.DataFrame:
        """One row per skip reason (``skipped: <reason>``) and flag kind (``flagged: <kind>``), with counts."""
        rows = [("rows read", self.n_read), ("rows skipped", self.n_skipped), ("rows kept with a flag", self.n_flagged)]
        rows += [(f"skipped: {reason}", n) for reason, n in self.skipped_by_reason.items()]
        rows += [(f"flagged: {kind}", n) for kind, n in self.flagged_by_kind.items()]
        return pd.DataFrame(rows, columns=["what", "count"])

    def summary(self) -> dict:
        return {
            "source": self.source,
            "n_read": int(self.n_read),
            "n_skipped": int(self.n_skipped),
            "skipped_share": float(self.skipped_share),
            "skipped_by_reason": {k: int(v) for k, v in self.skipped_by_reason.items()},
            "n_flagged": int(self.n_flagged),
            "flagged_by_kind": {k: int(v) for k, v in self.flagged_by_kind.items()},
        }

    def verdicts(self) -> list[Verdict]:
        share = self.skipped_share
        low, high = self.interval()
        top = ", ".join(f"{n} {reason}" for reason, n in list(self.skipped_by_reason.items())[:3])
        sentence = (
            f"{self.n_skipped} of {self.n_read} rows ({self.skipped_share:.1%}) could not be used and were skipped"
            + (f" (most often: {top})" if top else "")
            + "; the audits describe the rest only."
        )
        return [
            graded_verdict(
                self.section,
                "rows skipped while loading",
                share,
                share,
                share,
                warn=self.warn,
                fail=self.fail,
                direction="higher",
                ci=self.ci,
                n=self.n_read,
                n_clusters=self.n_read,
                cluster_unit="row",
                family="data_quality",
                sentence=sentence,
                detail=(
                    f"an exact count of this file, graded as is; {self.ci:.0%} Clopper-Pearson interval of the "
                    f"source's skip rate {low:.2%} to {high:.2%}; {self.n_flagged} kept rows flagged"
                ),
            )
        ]

    def verdicts_frame(self) -> pd.DataFrame:
        """The graded check as a table: check, value, interval, margins, verdict, sentence."""
        cols = ["check", "value", "ci_low", "ci_high", "threshold", "verdict", "sentence"]
        return verdict_table(self.verdicts(), cols)

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 2.5))
        counts = {**{f"skipped: {k}": v for k, v in self.skipped_by_reason.items()}}
        counts.update({f"flagged: {k}": v for k, v in self.flagged_by_kind.items()})
        if counts:
            ax.barh(list(counts)[::-1], list(counts.values())[::-1])
        ax.set_xlabel("rows")
        ax.set_title(f"{self.source}: {self.n_skipped} of {self.n_read} rows skipped")
        return ax.figure

    def publish(self, section: str | None = None) -> dict:
        """Attach the verdict and the counts to the notebook output for the report builder."""
        return publish(section or self.section, self.verdicts(), self.summary())


def data_quality(pairs: PreferenceSet, *, ci: float = 0.95) -> DataQuality:
    """The data-quality check of a loaded set (use the full load, before ``sample``).

    Skip reasons are grouped by :func:`workbench.data.doctor.skip_kind` (``"identical_pair"``,
    ``"expected a non-empty final assistant message"`` ...); a set loaded with
    ``on_error="raise"`` has nothing skipped by construction.
    """
    if not isinstance(pairs, PreferenceSet):
        raise TypeError(f"data_quality needs a PreferenceSet (from load_data), got {type(pairs).__name__}")
    reasons = Counter(skip_kind(s.reason) for s in pairs.skipped)
    return DataQuality(
        source=pairs.source,
        n_read=int(pairs.n_read),
        n_skipped=pairs.n_skipped,
        skipped_by_reason=dict(reasons.most_common()),
        flagged_by_kind=pairs.flag_counts(),
        n_flagged=pairs.n_flagged,
        ci=ci,
    )
