"""Plotting helpers shared by the audits (matplotlib underneath, seaborn for statistical plots)."""

from __future__ import annotations

__all__ = ["ensure_ax"]


def ensure_ax(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax
