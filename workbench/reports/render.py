"""Safe HTML rendering of untrusted text (prompts and responses) in notebooks and reports.

Every string that came from data goes through :func:`escape_text` before it is
placed in HTML; tables are rendered with pandas' escaping switched on.
"""

from __future__ import annotations

import html

import pandas as pd


def escape_text(text, max_chars: int | None = None) -> str:
    """HTML-escape a value (quotes included), optionally shortened with an ellipsis."""
    s = "" if text is None else str(text)
    if max_chars is not None and len(s) > max_chars:
        s = s[: max_chars - 1] + "\u2026"
    return html.escape(s, quote=True)


def safe_table(
    frame: pd.DataFrame, *, max_chars: int | None = 300, float_format: str = "{:.4g}", index: bool = False
) -> str:
    """An HTML table with every cell escaped (long text shortened to ``max_chars``)."""
    shown = frame.copy()
    for col in shown.columns:
        if shown[col].dtype == object or pd.api.types.is_string_dtype(shown[col]):
            shown[col] = shown[col].map(
                lambda v: (
                    v
                    if v is None or isinstance(v, float)
                    else (str(v)[: max_chars - 1] + "\u2026" if max_chars and len(str(v)) > max_chars else str(v))
                )
            )
    return shown.to_html(
        escape=True, index=index, float_format=lambda v: float_format.format(v), classes="wb-table", border=0, na_rep=""
    )


def show_table(frame: pd.DataFrame, **kwargs):
    """Display :func:`safe_table` in a notebook."""
    from IPython.display import HTML, display

    display(HTML(safe_table(frame, **kwargs)))
