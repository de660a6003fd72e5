"""One call at the top of every notebook: quiet library progress bars, consistent figures."""

from __future__ import annotations

import logging
import warnings

import pandas as pd


def setup_notebook(dpi: int = 110) -> None:
    """Silence model-loading progress bars and noisy warnings; set figure defaults."""
    # pyplot, transformers and datasets are imported here, not at module level, for CLI start-up time:
    # workbench.reports (and so `python -m workbench`) imports this module.
    import matplotlib.pyplot as plt

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    logging.getLogger("shap").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.autolayout": False})
    pd.set_option("display.max_colwidth", 200)
