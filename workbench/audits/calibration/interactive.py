"""Interactive pieces of the calibration audit: a temperature slider and a check for a live Jupyter frontend.

ipywidgets and IPython are imported inside the functions (optional ``notebooks`` extra).
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit

from workbench.audits.calibration.core import apply_orientation, margin_log_loss
from workbench.audits.calibration.display import ReliabilityDisplay
from workbench.audits.calibration.methods import TemperatureScaling
from workbench.audits.calibration.validation import check_n_bins, check_orientation, check_strategy, validate_inputs

__all__ = ["interactive_frontend", "temperature_slider"]


def temperature_slider(
    margin: Any,
    label: Any,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    orientation: str = "random",
    seed: Any = 0,
    t_min: float = 0.05,
    t_max: float = 20.0,
    value: float = 1.0,
    figsize: tuple[float, float] = (5, 6),
):
    """Interactive reliability diagram of ``sigmoid(margin / T)`` with a log-scale slider for ``T``.

    Returns an ``ipywidgets.VBox`` ``[slider, fit button, metrics line, Output]``.
    Moving the slider redraws the diagram in the ``Output`` widget and updates the
    ECE / Brier / NLL line; the "fit T" button sets the slider to the NLL-optimal
    temperature (:class:`~workbench.audits.calibration.methods.TemperatureScaling`,
    fitted on all pairs: exploration only, fit on a held-out split for a real
    audit). The latest display is kept as ``box.display_``.
    ipywidgets is imported lazily (optional ``notebooks`` extra).
    """
    import ipywidgets as widgets
    from IPython.display import display

    m, y = validate_inputs(margin, label)
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    m, y = apply_orientation(m, y, check_orientation(orientation), seed)
    if not 0 < t_min < t_max:
        raise ValueError(f"need 0 < t_min < t_max, got t_min={t_min!r}, t_max={t_max!r}")
    if not t_min <= value <= t_max:
        raise ValueError(f"`value` must lie in [t_min, t_max] = [{t_min}, {t_max}], got {value!r}")

    slider = widgets.FloatLogSlider(
        value=value,
        base=10,
        min=np.log10(t_min),
        max=np.log10(t_max),
        step=0.01,
        description="T",
        continuous_update=False,
        readout_format=".3g",
    )
    fit_button = widgets.Button(description="fit T (min NLL)", tooltip="set T to the NLL-optimal temperature")
    info = widgets.HTML()
    out = widgets.Output()
    box = widgets.VBox([slider, fit_button, info, out])

    def redraw(change=None):
        t = float(slider.value)
        p = expit(m / t)
        fig, ax = plt.subplots(figsize=figsize)
        disp = ReliabilityDisplay.from_predictions(
            p, y, n_bins, strategy, ax=ax, title=f"T = {t:.3g}", n_boot=200, seed=0
        )
        brier = float(np.mean((p - y) ** 2))
        info.value = (
            f"T = {t:.4g} &nbsp; ECE = {disp.ece:.4f} &nbsp; Brier = {brier:.4f} "
            f"&nbsp; NLL = {margin_log_loss(m, y, t):.4f}"
        )
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)
        box.display_ = disp

    def fit(_button=None):
        ts = TemperatureScaling(bounds=(t_min, t_max)).fit(m, y)
        slider.value = ts.temperature_

    slider.observe(redraw, names="value")
    fit_button.on_click(fit)
    redraw()
    return box


def interactive_frontend() -> bool:
    """True when running in an IPython kernel that a Jupyter server started (JupyterLab / Notebook).

    A headless papermill/nbclient run starts its kernel without a server, so
    ``JPY_SESSION_NAME`` (set by jupyter_server for each session's kernel) is
    absent and this returns False; so does a plain Python process or a terminal
    IPython. Frontends that start kernels without jupyter_server (some editors)
    are not recognised: notebooks offer an explicit override.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks extra
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return bool(os.environ.get("JPY_SESSION_NAME"))
