"""Safe HTML rendering of untrusted text (prompts and responses) in notebooks and reports.

Every string that came from data (texts, file names, model and checkpoint names,
categories, parameters) goes through :func:`escape_text` and is placed in HTML
output (``IPython.display.HTML``), never in Markdown output: nbconvert's Markdown
renderer turns backticks, ``[text](javascript:...)`` and ``$\\href{...}$`` into
live markup. Tables are rendered with pandas' escaping switched on. Where data must
go into Markdown after all, :func:`escape_markdown` makes it plain text there.
"""

from __future__ import annotations

import html
import re

import pandas as pd

# ASCII punctuation that Markdown, its extensions (tables, strikethrough) or MathJax give a meaning
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:$=^])")
# bidirectional overrides and isolates: they can make a file name read backwards ("gnp.exe")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _show_bidi(s: str) -> str:
    """Bidi control characters as visible ``\\u202e`` escapes."""
    return _BIDI_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def escape_text(text, max_chars: int | None = None) -> str:
    """HTML-escape a value (quotes included), optionally shortened with an ellipsis.

    Bidirectional override characters are shown as ``\\u202e`` escapes instead of
    reordering the text around them.
    """
    s = "" if text is None else str(text)
    if max_chars is not None and len(s) > max_chars:
        s = s[: max_chars - 1] + "\u2026"
    return html.escape(_show_bidi(s), quote=True)


def escape_markdown(text, max_chars: int | None = None) -> str:
    """A value as plain text for Markdown *text* (not inside a code span).

    Every character Markdown or MathJax give a meaning (backticks, brackets,
    parentheses, ``*``, ``_``, ``$``, ``\\``, ``:`` ...) is backslash-escaped, and
    ``& < > " '`` become HTML entities, so no link, image, code span, emphasis, math
    or HTML tag can come out of it, whatever its protocol. Line breaks become spaces.
    """
    s = "" if text is None else str(text)
    if max_chars is not None and len(s) > max_chars:
        s = s[: max_chars - 1] + "\u2026"
    s = " ".join(_show_bidi(s).splitlines())
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", s), quote=True)


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
