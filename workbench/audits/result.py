"""The result contract every audit returns.

Each audit has one entry point (``overview``, ``calibration_audit``, ``feature_audit``,
``attribution_audit``, ``sycophancy_audit``, ``drift_audit``, ``ensemble_audit``) that returns
a subclass of :class:`AuditResult`. A notebook then needs four calls and no logic:

* ``result.to_frame()``: the main table, one row per check or group;
* ``result.summary()``: headline numbers as a flat ``dict`` (JSON-safe values);
* ``result.verdicts()``: the graded checks as :class:`~workbench.reports.verdicts.Verdict` objects;
* ``result.plot(ax=None)``: the main figure (drawn on ``ax`` when given), returned as a matplotlib Figure;

and ``result.publish()`` hands the verdicts and summary to the report builder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import pandas as pd

from workbench.reports.verdicts import Verdict, publish

__all__ = ["AuditResult"]


class AuditResult(ABC):
    """Base class of every audit result (see the module docstring for the contract)."""

    #: the report section the verdicts are published under (e.g. ``"calibration"``)
    section: ClassVar[str] = ""

    @abstractmethod
    def to_frame(self) -> pd.DataFrame:
        """The main table of the audit."""

    @abstractmethod
    def summary(self) -> dict:
        """Headline numbers as a flat, JSON-safe ``dict``."""

    @abstractmethod
    def verdicts(self) -> list[Verdict]:
        """The graded checks of the audit (an empty list when it grades nothing)."""

    @abstractmethod
    def plot(self, ax=None):
        """Draw the main figure on ``ax`` (a new figure when ``None``) and return the Figure."""

    def publish(self, section: str | None = None) -> dict:
        """Attach :meth:`verdicts` and :meth:`summary` to the notebook output for the report builder."""
        return publish(section or self.section, self.verdicts(), self.summary())
