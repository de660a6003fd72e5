"""Overview of an RM on preference pairs: pairwise accuracy, reward gap and score distributions.

The public surface of :mod:`workbench.audits.overview` (notebook 00)::

    from workbench.audits.overview import overview

    result = overview(scores, data=pairs)  # PairScores (or its frame) and the scored data
    result.to_frame(); result.by_group("category"); result.plot(); result.verdicts()

:class:`OverviewResult` is an :class:`~workbench.audits.result.AuditResult` of section
``"overview"``; its verdicts (family ``"accuracy"``) grade pairwise accuracy against chance
and against the length-only baseline "prefer the longer response", on cluster-bootstrap
intervals over prompts or topics.
"""

from workbench.audits.overview.audit import OverviewResult, overview

__all__ = ["OverviewResult", "overview"]
