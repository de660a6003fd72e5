"""Overview of an RM on preference pairs: pairwise accuracy, reward gap and score distributions.

The public surface of :mod:`workbench.audits.overview` (notebook 00)::

    from workbench.audits.overview import overview

    result = overview(scores)  # PairScores or its frame
    result.to_frame(); result.by_group("category"); result.plot()

:class:`OverviewResult` is an :class:`~workbench.audits.result.AuditResult` that grades
nothing: :meth:`~OverviewResult.verdicts` is empty and its section is ``"overview"``.
"""

from workbench.audits.overview.audit import OverviewResult, overview

__all__ = ["OverviewResult", "overview"]
