"""Reliability diagrams for pairwise reward-model probabilities.

:class:`ReliabilityDisplay` follows the scikit-learn ``*Display`` pattern: build
it with :meth:`ReliabilityDisplay.from_predictions` (which also plots) or from a
precomputed :func:`~workbench.audits.calibration.metrics.binned_reliability` table, then call
:meth:`ReliabilityDisplay.plot` on any axes. The diagram shows

* the diagonal ``y = x`` (perfect calibration);
* shaded over-confidence and under-confidence regions. For ``x > 0.5`` points
  below the diagonal are over-confident (the RM favours the first response
  more strongly than the humans do) and points above are under-confident; for
  ``x < 0.5`` it is the other way round. Temperature scaling with ``T > 1``
  moves points from the over-confident into the under-confident direction;
* the observed frequency per non-empty bin at the bin's mean prediction, with
  the table's ``ci_low``/``ci_high`` as error bars (Wilson for hard labels,
  bootstrap for soft), and the ECE in the legend;
* a bar histogram of the bin counts in a strip below the diagram (one bar per
  non-empty bin).

:func:`plot_reliability_comparison` draws several displays side by side;
:func:`~workbench.audits.calibration.interactive.temperature_slider` gives an ipywidgets
control to explore ``T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from mpl_toolkits.axes_grid1 import make_axes_locatable

from workbench._utils.plotting import ensure_ax
from workbench.audits.calibration.metrics import binned_reliability, expected_calibration_error
from workbench.audits.calibration.validation import check_n_bins, check_strategy, validate_prob_label

__all__ = ["ReliabilityDisplay", "plot_reliability_comparison"]

OVER_COLOR = "#d62728"
UNDER_COLOR = "#1f77b4"
POINT_COLOR = "#222222"


class ReliabilityDisplay:
    """Reliability diagram with per-bin CIs, bin-count histogram and confidence regions.

    Parameters
    ----------
    table : DataFrame from :func:`~workbench.audits.calibration.metrics.binned_reliability`.
    ece : ECE shown in the legend (``None`` to omit).
    n_bins, strategy : the binning used for ``table`` (shown in the axis label).
    title : axes title.
    name : legend label of the observed curve (default ``"observed"``).

    Attributes set by :meth:`plot`
    -------------------------------
    ax_, hist_ax_, figure_ : the diagram axes, the histogram axes, the figure.
    line_ : ``ErrorbarContainer`` of the observed frequencies.
    bars_ : ``BarContainer`` of the histogram (one bar per non-empty bin).
    diagonal_ : the ``y = x`` line.
    regions_ : dict ``{"over": [PolyCollection, ...], "under": [...]}``.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        *,
        ece: float | None = None,
        n_bins: int | None = None,
        strategy: str = "uniform",
        title: str | None = None,
        name: str | None = None,
    ):
        required = {"bin_lower", "bin_upper", "count", "mean_confidence", "mean_outcome", "ci_low", "ci_high"}
        missing = required - set(table.columns)
        if missing:
            raise ValueError(f"`table` lacks column(s) {sorted(missing)}; build it with binned_reliability")
        self.table = table
        self.ece = ece
        self.n_bins = int(n_bins) if n_bins is not None else len(table)
        self.strategy = strategy
        self.title = title
        self.name = name or "observed"

    @classmethod
    def from_predictions(
        cls,
        prob: Any,
        label: Any,
        n_bins: int = 10,
        strategy: str = "uniform",
        *,
        ax=None,
        title: str | None = None,
        name: str | None = None,
        ci: float = 0.95,
        n_boot: int = 500,
        seed: Any = 0,
    ) -> ReliabilityDisplay:
        """Bin ``prob`` against ``label``, compute the ECE and plot on ``ax`` (a new figure if None).

        Orient pairs before calling (see :mod:`workbench.audits.calibration.metrics`); the
        function itself makes no assumption about orientation.
        """
        p, y = validate_prob_label(prob, label)
        n_bins = check_n_bins(n_bins)
        strategy = check_strategy(strategy)
        table = binned_reliability(p, y, n_bins, strategy, ci=ci, n_boot=n_boot, seed=seed)
        ece = expected_calibration_error(p, y, n_bins, strategy)
        disp = cls(table, ece=ece, n_bins=n_bins, strategy=strategy, title=title, name=name)
        return disp.plot(ax=ax)

    def plot(
        self, ax=None, *, title: str | None = None, histogram: bool = True, shade: bool = True, name: str | None = None
    ) -> ReliabilityDisplay:
        """Draw the diagram on ``ax`` (a new 5x6 inch figure if None); returns ``self``."""
        ax = ensure_ax(ax, (5, 6))
        title = self.title if title is None else title
        name = name or self.name
        t = self.table
        lo = float(min(0.0, np.nanmin(t["bin_lower"])))
        hi = float(max(1.0, np.nanmax(t["bin_upper"])))

        regions: dict[str, list] = {"over": [], "under": []}
        if shade:
            left = np.linspace(lo, 0.5, 50)
            right = np.linspace(0.5, hi, 50)
            # x > 0.5: below the diagonal is over-confident; x < 0.5: above it is.
            regions["over"].append(
                ax.fill_between(left, left, 1.0, color=OVER_COLOR, alpha=0.07, lw=0, label="over-confident")
            )
            regions["over"].append(ax.fill_between(right, 0.0, right, color=OVER_COLOR, alpha=0.07, lw=0))
            regions["under"].append(
                ax.fill_between(left, 0.0, left, color=UNDER_COLOR, alpha=0.07, lw=0, label="under-confident")
            )
            regions["under"].append(ax.fill_between(right, right, 1.0, color=UNDER_COLOR, alpha=0.07, lw=0))
        (self.diagonal_,) = ax.plot([lo, hi], [lo, hi], ls="--", color="gray", lw=1, label="perfect calibration")

        nz = t["count"].to_numpy() > 0
        x = t["mean_confidence"].to_numpy()[nz]
        yv = t["mean_outcome"].to_numpy()[nz]
        err = np.vstack(
            [
                np.clip(yv - t["ci_low"].to_numpy()[nz], 0, None),
                np.clip(t["ci_high"].to_numpy()[nz] - yv, 0, None),
            ]
        )
        label = name if self.ece is None else f"{name} (ECE = {self.ece:.3f})"
        self.line_ = ax.errorbar(
            x, yv, yerr=np.nan_to_num(err), fmt="o-", color=POINT_COLOR, ms=4, lw=1.2, capsize=2.5, label=label
        )
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.0, 1.0)
        ax.set_ylabel("observed frequency (first preferred)")
        if title:
            ax.set_title(title)
        ax.legend(loc="upper left", fontsize="small", framealpha=0.85)
        ax.grid(alpha=0.2)

        self.hist_ax_ = None
        self.bars_ = None
        xlabel = f"predicted probability ({self.n_bins} {self.strategy} bins)"
        if histogram:
            hist_ax = make_axes_locatable(ax).append_axes("bottom", size="22%", pad=0.1, sharex=ax)
            widths = (t["bin_upper"] - t["bin_lower"]).to_numpy()[nz]
            self.bars_ = hist_ax.bar(
                t["bin_lower"].to_numpy()[nz],
                t["count"].to_numpy()[nz],
                width=np.maximum(widths, 0.004 * (hi - lo)),
                align="edge",
                color="#9e9e9e",
                edgecolor="white",
                lw=0.5,
            )
            hist_ax.set_ylabel("count", fontsize="small")
            hist_ax.set_xlabel(xlabel)
            hist_ax.tick_params(labelsize="small")
            ax.tick_params(labelbottom=False)
            self.hist_ax_ = hist_ax
        else:
            ax.set_xlabel(xlabel)

        self.ax_ = ax
        self.figure_ = ax.figure
        self.regions_ = regions
        return self


def plot_reliability_comparison(
    displays: Sequence[ReliabilityDisplay],
    titles: Sequence[str] | None = None,
    *,
    figsize: tuple[float, float] | None = None,
):
    """Plot several :class:`ReliabilityDisplay` objects side by side; returns the Figure.

    ``titles`` (one per display) override the displays' own titles. The
    displays' ``ax_`` attributes point at the new axes afterwards.
    """
    displays = list(displays)
    if not displays:
        raise ValueError("`displays` is empty; pass at least one ReliabilityDisplay")
    if titles is not None and len(titles) != len(displays):
        raise ValueError(f"`titles` has {len(titles)} entries for {len(displays)} displays")
    k = len(displays)
    fig, axes = plt.subplots(1, k, figsize=figsize or (4.6 * k, 5.6), squeeze=False)
    for i, (disp, ax) in enumerate(zip(displays, axes[0])):
        disp.plot(ax=ax, title=None if titles is None else titles[i])
    return fig
