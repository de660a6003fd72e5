"""Words of a response: splitting, deleting, normalising, and the argument checks shared by the subpackage.

Conventions
-----------
* **Words** are maximal runs of non-white-space characters of the response
  (:func:`response_words`); punctuation stays attached ("right!").
* **Deleting words** (occlusion, SHAP masking, deletion curves) removes the word
  and the white space after it (:func:`delete_words`), so the result reads like
  a response that never had the word.
* **Normalised words** (:func:`normalize_words`) are the lower-cased n-gram units
  of :mod:`workbench.audits.features.triggers` (same pattern, kept in sync by a test).
* **Rankings** ("top words") sort by the signed attribution, largest first
  (``by="value"``: words that raise the reward) or by ``|attribution|``
  (``by="abs"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = [
    "AGREEMENT_WORDS",
    "RANK_BY",
    "TOKEN_PATTERN",
    "check_k",
    "check_rank_by",
    "delete_words",
    "normalize_words",
    "positive_int",
    "response_words",
]

_WORD_RE = re.compile(r"\S+")
#: The n-gram word pattern of :mod:`workbench.audits.features.triggers` (kept in sync by a test).
TOKEN_PATTERN = r"\w+(?:['-]\w+)*"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
#: The two ways to rank words: by signed attribution or by its magnitude.
RANK_BY = ("value", "abs")

#: Words that signal agreement with the user (the known-answer check of the demo RMs).
AGREEMENT_WORDS: tuple[str, ...] = (
    "right",
    "agree",
    "agreed",
    "absolutely",
    "exactly",
    "correct",
    "spot",
    "true",
    "indeed",
    "yes",
    "nailed",
)


def response_words(response: str) -> tuple[list[str], list[tuple[int, int]]]:
    """White-space separated words of ``response`` and their ``(start, end)`` character spans."""
    if not isinstance(response, str):
        raise TypeError(f"response must be a string, got {type(response).__name__}")
    spans = [m.span() for m in _WORD_RE.finditer(response)]
    return [response[a:b] for a, b in spans], spans


def delete_words(response: str, spans: Sequence[tuple[int, int]], remove, replacement: str = "") -> str:
    """``response`` with the words at positions ``remove`` (indices into ``spans``) deleted.

    A deleted word takes the white space after it along (the last word the white
    space before it), so ``"a b c"`` minus ``b`` is ``"a c"``. With a non-empty
    ``replacement`` the word is replaced by that string instead (white space kept).
    """
    remove = {int(i) for i in remove}
    if not remove:
        return response
    if any(i < 0 or i >= len(spans) for i in remove):
        raise IndexError(f"word index out of range (the response has {len(spans)} words)")
    if replacement:
        out, pos = [], 0
        for i, (a, b) in enumerate(spans):
            out.append(response[pos:a])
            out.append(replacement if i in remove else response[a:b])
            pos = b
        out.append(response[pos:])
        return "".join(out)
    kept = [i for i in range(len(spans)) if i not in remove]
    if not kept:
        return ""
    pieces = [response[: spans[0][0]]]
    for j, i in enumerate(kept):
        a, b = spans[i]
        pieces.append(response[a:b])
        if j + 1 < len(kept):
            # the white space that followed this word in the original text
            pieces.append(response[b : spans[i + 1][0]] if i + 1 < len(spans) else " ")
    pieces.append(response[spans[-1][1] :])
    return "".join(pieces)


def normalize_words(word: str) -> list[str]:
    """Lower-cased n-gram units of one response word, as :mod:`workbench.audits.features.triggers` counts them.

    ``"You're"`` -> ``["you're"]``, ``"right!"`` -> ``["right"]``, ``"e.g."`` -> ``["e", "g"]``, ``"—"`` -> ``[]``.
    """
    return _TOKEN_RE.findall(word.lower().replace("\u2019", "'").replace("\u2018", "'"))


def check_rank_by(by: str) -> str:
    """``by`` if it is one of :data:`RANK_BY`, else a ValueError."""
    if by not in RANK_BY:
        raise ValueError(f"by must be one of {RANK_BY}, got {by!r}")
    return by


def check_k(k, name: str = "k") -> int:
    """``k`` as an int if it is a positive integer, else a ValueError naming ``name``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def positive_int(value, name: str, allow_none: bool = False):
    """``value`` as an int if it is a positive integer (or ``None`` when allowed), else a ValueError."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return int(value)
