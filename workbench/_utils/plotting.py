"""Plotting helpers shared by the audits (matplotlib underneath, seaborn for statistical plots)."""

from __future__ import annotations

__all__ = ["ensure_ax", "mpl_text", "panel_axes"]


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
