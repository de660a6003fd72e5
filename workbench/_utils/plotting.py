"""Plotting helpers shared by the audits (matplotlib underneath, seaborn for statistical plots)."""

from __future__ import annotations

__all__ = ["ensure_ax", "error_histogram", "mpl_text", "panel_axes"]


def ensure_ax(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def mpl_text(text) -> str:
    """Plain text for matplotlib labels (a ``$`` would start math mode)."""
    return str(text).replace("$", r"\$")


def panel_axes(kind: str, kinds: tuple[str, ...], ax, panel_size: tuple[float, float]):
    """The panels a ``plot(ax=None, kind="all")`` draws, and where: ``(figure, axes, chosen kinds)``.

    ``kind`` is ``"all"`` or one of ``kinds``; ``ax`` is ``None`` (a new row of panels of
    ``panel_size`` each) or one Axes per chosen panel.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if kind != "all" and kind not in kinds:
        raise ValueError(f"kind must be 'all' or one of {kinds}, got {kind!r}")
    chosen = kinds if kind == "all" else (kind,)
    if ax is None:
        width, height = panel_size
        fig, axes = plt.subplots(1, len(chosen), figsize=(width * len(chosen), height), squeeze=False)
        return fig, list(axes[0]), chosen
    axes = list(np.ravel(ax))
    if len(axes) != len(chosen):
        raise ValueError(f"kind={kind!r} draws {len(chosen)} panel(s) but {len(axes)} Axes were given")
    return axes[0].figure, axes, chosen


def error_histogram(ax, items, column: str) -> None:
    """Density histograms of ``items[column]`` for the pairs an RM ranks right and wrong.

    ``items`` has a ``mistake`` column (1 wrong, 0 right, NaN undecided: left out); the bins
    span 0 to the column's maximum over all items, and the legend counts each group.
    """
    import numpy as np
    import pandas as pd
    import seaborn as sns

    decided = items[items["mistake"].notna()]
    n_wrong = int((decided["mistake"] == 1).sum())
    right, wrong = f"ranked right (n={len(decided) - n_wrong})", f"ranked wrong (n={n_wrong})"
    data = pd.DataFrame(
        {
            column: decided[column].to_numpy(dtype=float),
            "pairs": np.where(decided["mistake"].to_numpy() == 1, wrong, right),
        }
    )
    bins = np.linspace(0, max(float(items[column].max()), 1e-9), 25)
    if len(data):
        sns.histplot(
            data=data,
            x=column,
            hue="pairs",
            hue_order=[right, wrong],
            palette=["C0", "C1"],
            bins=bins,
            stat="density",
            common_norm=False,
            alpha=0.6,
            ax=ax,
        )
        if ax.get_legend() is not None:
            sns.move_legend(ax, "best", title=None, fontsize="small")
    ax.set_ylabel("density")
