"""Plotting helpers shared by the audits (matplotlib underneath, seaborn for statistical plots)."""

from __future__ import annotations

__all__ = ["ensure_ax", "mpl_text"]


def ensure_ax(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def mpl_text(text) -> str:
    """Plain text for matplotlib labels (a ``$`` would start math mode)."""
    return str(text).replace("$", r"\$")
