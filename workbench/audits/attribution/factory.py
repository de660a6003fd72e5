"""Build an explainer by name (``make_explainer("ig", rm, n_steps=32)``)."""

from __future__ import annotations

from workbench.audits.attribution.cache import ExplanationCache
from workbench.audits.attribution.integrated_gradients import IntegratedGradientsExplainer
from workbench.audits.attribution.occlusion import OcclusionExplainer
from workbench.audits.attribution.shap import ShapExplainer

__all__ = ["METHODS", "make_explainer"]

#: Method names accepted by :func:`make_explainer` (with aliases).
METHODS = {
    "ig": "integrated_gradients",
    "integrated_gradients": "integrated_gradients",
    "occlusion": "occlusion",
    "shap": "shap",
}

_CLASSES = {
    "integrated_gradients": IntegratedGradientsExplainer,
    "occlusion": OcclusionExplainer,
    "shap": ShapExplainer,
}


def make_explainer(method: str, rm, explanation_cache: ExplanationCache | None = None, **kwargs):
    """Build an explainer by name: ``"ig"``/``"integrated_gradients"``, ``"occlusion"`` or ``"shap"``.

    ``explanation_cache`` lets it reuse explanations stored by an earlier run (``None``: compute every time).
    """
    key = METHODS.get(str(method).strip().lower())
    if key is None:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    explainer = _CLASSES[key](rm, **kwargs)
    explainer.explanation_cache = explanation_cache
    return explainer
