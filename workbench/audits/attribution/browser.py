"""A JupyterLab browser of explanations: pick an example and a method, see the heatmap and the top words."""

from __future__ import annotations

from collections.abc import Sequence

from workbench.audits.attribution.explanation import Explanation, check_explanation, explanation_html
from workbench.reports.render import escape_text, safe_table

__all__ = ["browser_html", "check_by_method", "explanation_browser"]


def check_by_method(explanations_by_method) -> dict[str, list[Explanation]]:
    """``{method name: [Explanation, ...]}`` with the same, non-zero number of explanations per method."""
    if not isinstance(explanations_by_method, dict) or not explanations_by_method:
        raise ValueError("explanations_by_method must be a non-empty dict {method name: [Explanation, ...]}")
    lengths = {name: len(v) for name, v in explanations_by_method.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"every method needs the same, non-zero number of explanations, got {lengths}")
    for name, v in explanations_by_method.items():
        for i, e in enumerate(v):
            check_explanation(e, f"explanations_by_method[{name!r}][{i}]")
    return {str(k): list(v) for k, v in explanations_by_method.items()}


def browser_html(explanations_by_method, index: int, method: str, k: int = 10) -> str:
    """The HTML the browser shows for one example and method (all data escaped)."""
    by_method = check_by_method(explanations_by_method)
    if method not in by_method:
        raise ValueError(f"method must be one of {sorted(by_method)}, got {method!r}")
    e = by_method[method][index]
    top = e.top_words(min(k, e.n_words), by="abs") if e.n_words else e.to_frame()
    return (
        explanation_html(e)
        + f"<h4>Top {len(top)} words by |attribution| ({escape_text(method)})</h4>"
        + safe_table(top, max_chars=60)
    )


def explanation_browser(explanations_by_method: dict[str, Sequence[Explanation]], k: int = 10):
    """A JupyterLab widget: dropdowns for the example and the method, and the escaped heatmap and top words.

    ``explanations_by_method`` maps a method name to a list of explanations of the
    same examples in the same order (e.g. ``{"ig": [...], "shap": [...]}``).
    """
    import ipywidgets as widgets

    by_method = check_by_method(explanations_by_method)
    first = next(iter(by_method.values()))
    options = []
    for i, e in enumerate(first):
        text = e.response if e.target == "score" else e.parts["chosen"].response
        label = f"{i}: {e.example_id} · {text[:50]}" + ("…" if len(text) > 50 else "")
        options.append((label, i))  # dropdown labels are rendered as plain text
    example = widgets.Dropdown(options=options, value=0, description="example", layout=widgets.Layout(width="60%"))
    method = widgets.Dropdown(options=list(by_method), value=next(iter(by_method)), description="method")
    out = widgets.HTML(value=browser_html(by_method, 0, method.value, k))

    def update(_change=None):
        out.value = browser_html(by_method, example.value, method.value, k)

    example.observe(update, names="value")
    method.observe(update, names="value")
    box = widgets.VBox([widgets.HBox([example, method]), out])
    box.update = update  # handy for tests and scripted use
    box.example, box.method, box.output = example, method, out
    return box
