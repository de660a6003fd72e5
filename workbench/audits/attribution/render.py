"""HTML heatmaps and bar plots of explanations (:class:`~workbench.audits.attribution.explanation.Explanation`).

Every piece of text from the data (prompt, words, tokens, white space) goes
through :func:`workbench.reports.render.escape_text`; the only markup is the
workbench's own ``<div>``/``<span>`` elements with inline styles. Red marks
words that raise the reward (or the margin), blue words that lower it; the
colour intensity is ``|attribution| / scale`` with ``scale`` the largest
``|attribution|`` of the explanation unless given.

The functions here draw any object with the attributes of an ``Explanation``;
:func:`workbench.audits.attribution.explanation.explanation_html` is the checked
public entry point.
"""

from __future__ import annotations

import math

import numpy as np

from workbench._utils.plotting import ensure_ax, mpl_text
from workbench.reports.render import escape_text

__all__ = ["LEVELS", "attribution_color", "heatmap_html", "plot_top_words"]

#: What :func:`heatmap_html` can colour: the response's words or every model-input token.
LEVELS = ("word", "token")


def attribution_color(value: float, scale: float) -> str:
    """A CSS ``rgba`` background: red for positive, blue for negative, transparent for 0 or NaN."""
    if not np.isfinite(value) or scale <= 0 or not np.isfinite(scale):
        return "rgba(0,0,0,0)"
    alpha = min(1.0, abs(value) / scale) * 0.85
    rgb = "220,38,38" if value > 0 else "37,99,235"
    return f"rgba({rgb},{alpha:.3f})"


def _span(text: str, value: float, scale: float, label: str) -> str:
    title = escape_text(f"{label}: {value:+.4g}")
    return (
        f'<span class="wb-attr-unit" style="background:{attribution_color(value, scale)};border-radius:3px;'
        f'padding:1px 1px" title="{title}">{escape_text(text)}</span>'
    )


def _scale(values: np.ndarray, scale: float | None) -> float:
    if scale is not None:
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        return float(scale)
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _words_html(response: str, spans, values: np.ndarray, scale: float) -> str:
    parts, pos = [], 0
    for (a, b), v in zip(spans, values):
        parts.append(escape_text(response[pos:a]))
        parts.append(_span(response[a:b], float(v), scale, response[a:b]))
        pos = b
    parts.append(escape_text(response[pos:]))
    return "".join(parts)


def _tokens_html(tokens, values: np.ndarray, scale: float) -> str:
    return "\u200b".join(_span(t, float(v), scale, t) for t, v in zip(tokens, values))


_BOX = (
    '<div class="wb-attr-text" style="white-space:pre-wrap;line-height:1.9;font-family:system-ui,sans-serif;'
    'border:1px solid #ddd;border-radius:4px;padding:6px;margin:4px 0">{}</div>'
)


def _header(e) -> str:
    bits = [f"<b>{escape_text(e.method)}</b>", f"{escape_text(e.target)} {e.score:+.4g}"]
    if np.isfinite(e.baseline_score):
        bits.append(f"baseline {e.baseline_score:+.4g}")
    if np.isfinite(e.convergence_delta):
        bits.append(f"convergence delta {e.convergence_delta:+.3g}")
    if e.example_id is not None:
        bits.append(f"example {escape_text(e.example_id)}")
    return '<div class="wb-attr-meta" style="font-size:90%;color:#444">' + " · ".join(bits) + "</div>"


_LEGEND = (
    '<div class="wb-attr-legend" style="font-size:80%;color:#666">'
    '<span style="background:rgba(220,38,38,0.6)">&nbsp;raises&nbsp;</span> '
    '<span style="background:rgba(37,99,235,0.6)">&nbsp;lowers&nbsp;</span> the {what}; '
    "hover a word for its attribution (scale {scale:.3g}).</div>"
)


def heatmap_html(e, level: str = "word", scale: float | None = None, show_prompt: bool = True) -> str:
    """An HTML heatmap of an explanation (escaped; safe to display untrusted text).

    ``level="word"`` colours the response's words in the original text;
    ``level="token"`` colours every model-input token (prompt and template
    included, IG only meaningfully). Margin explanations show the chosen and the
    rejected response, each coloured by its contribution to the margin.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    values = e.word_attributions if level == "word" else e.token_attributions
    s = _scale(values, scale)
    out = ['<div class="wb-attr">', _header(e)]
    if show_prompt and e.prompt:
        out.append(
            '<div class="wb-attr-prompt" style="color:#555;font-size:90%;white-space:pre-wrap">'
            f"<b>Prompt:</b> {escape_text(e.prompt, max_chars=600)}</div>"
        )
    if level == "token":
        out.append(_BOX.format(_tokens_html(e.tokens, e.token_attributions, s)))
    elif e.target == "margin":
        n_c = e.parts["chosen"].n_words
        for name, part, vals in (
            ("chosen", e.parts["chosen"], e.word_attributions[:n_c]),
            ("rejected", e.parts["rejected"], e.word_attributions[n_c:]),
        ):
            out.append(f"<div><b>{name}</b> (reward {part.score:+.4g})</div>")
            out.append(_BOX.format(_words_html(part.response, part.word_spans, vals, s)))
    else:
        out.append(_BOX.format(_words_html(e.response, e.word_spans, e.word_attributions, s)))
    out.append(_LEGEND.format(what="margin" if e.target == "margin" else "reward", scale=s))
    out.append("</div>")
    return "".join(out)


def plot_top_words(e, k: int = 10, ax=None, by: str = "abs", title: str | None = None):
    """Horizontal bars of the ``k`` most important words (ranked ``by`` "abs" or "value"); returns the Axes."""
    top = e.top_words(max(1, min(k, e.n_words)), by=by) if e.n_words else e.to_frame()
    ax = ensure_ax(ax, (6, 0.32 * max(len(top), 3) + 1.0))
    t = top.iloc[::-1]
    labels = [
        mpl_text(w[:30]) + (f" ({s[0]})" if "side" in t.columns else "")
        for w, s in zip(t["word"], t["side"] if "side" in t.columns else [""] * len(t))
    ]
    y = np.arange(len(t))
    vals = t["attribution"].to_numpy(float)
    ax.barh(y, vals, color=["tab:red" if v > 0 else "tab:blue" for v in vals])
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize="small")
    ax.axvline(0, color="k", lw=0.7)
    ax.set_xlabel(f"attribution to the {e.target}")
    ax.set_title(title or f"{e.method}: top {len(t)} words ({e.target} {e.score:+.3g})")
    return ax
