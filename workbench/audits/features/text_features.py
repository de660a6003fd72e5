"""Surface features of responses that a reward model (RM) can exploit as shortcuts.

:func:`extract_features` turns a list of responses into a DataFrame with one row
per response and one column per feature (see :data:`FEATURE_DESCRIPTIONS`). The
features are deliberately *shallow*: they describe length, style and tone, never
correctness, so a strong association between a feature and the reward is a hint
that the RM rewards the surface rather than the substance.

Conventions
-----------
* **Words** are runs of letters/digits/underscores, optionally joined by an
  apostrophe or hyphen (``"you're"``, ``"well-known"`` are one word). All
  n-gram features lower-case the words first.
* **Sentences** are counted by splitting every non-empty line outside fenced code
  blocks at ``.``, ``!`` or ``?`` followed by white space; a segment counts if it
  contains a word character (so each list item or header line is a sentence).
  Abbreviations such as "e.g." therefore over-count slightly.
* **Tokens**: with a Hugging Face tokenizer, ``len(tokenizer(text,
  add_special_tokens=False)["input_ids"])``. Without one, a regex word-piece
  approximation (:func:`approx_token_count`): a word of at most 6 letters is one
  token and every further 4 letters add one; digit runs cost one token per 3
  digits; every other non-space character (punctuation, symbols, emoji) is one
  token. On English prose this is within roughly 10-15% of GPT-style BPE counts;
  it is meant for *relative* comparisons (longer vs shorter), not for budgets.
* **Lexicon features** (hedges, agreement, flattery) match the module-level
  tuples below case-insensitively with word boundaries on both sides, after
  mapping curly apostrophes to ``'``. All phrases are tried in one alternation,
  longest first, so ``"you're absolutely right"`` counts once, not also as
  ``"absolutely"``. Matches never overlap.
* **Agreement and flattery give the opening the most weight**: the multi-word
  phrases (``AGREEMENT_PHRASES``, ``FLATTERY_PHRASES``) count anywhere in the
  response, but the single-word affirmations (``AGREEMENT_OPENER_WORDS`` such as
  "Absolutely", "Exactly", "Yes"; ``FLATTERY_OPENER_WORDS`` such as "Certainly")
  count *only in the opener*: the run of lexicon items at the very start of the
  response separated by nothing but punctuation and white space ("Yes! Absolutely,
  you're right." is an opener of three items). Elsewhere "absolutely" or
  "correct" is usually an ordinary word ("it is absolutely necessary", "the
  correct answer is 4") and is not counted.
* **Markdown features** (list items, bold, headers) ignore the inside of fenced
  code blocks, so a Python comment ``# note`` is not a header.
* Ratios that are undefined (``hedge_rate`` of an empty text, ``distinct_2`` of
  a one-word text, ...) are ``NaN``; the probes in :mod:`workbench.audits.features.probes`
  drop non-finite values per feature and report the ``n`` they used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "HEDGES",
    "AGREEMENT_PHRASES",
    "AGREEMENT_OPENER_WORDS",
    "FLATTERY_PHRASES",
    "FLATTERY_OPENER_WORDS",
    "FEATURE_DESCRIPTIONS",
    "extract_features",
    "approx_token_count",
    "token_counts",
    "split_sentences",
    "words",
    "count_phrases",
    "hedge_count",
    "agreement_count",
    "flattery_count",
]

# ---------------------------------------------------------------------------
# Lexicons (lower case; matched case-insensitively with word boundaries)
# ---------------------------------------------------------------------------

#: Hedging / epistemic-uncertainty markers (after Hyland's hedge lists, trimmed to
#: phrases that are rarely anything but a hedge in assistant replies). Modal verbs
#: "may", "might", "could" are included; they over-count slightly ("could you").
HEDGES: tuple[str, ...] = (
    "i think",
    "i believe",
    "i guess",
    "i suspect",
    "i'm not sure",
    "i am not sure",
    "not entirely sure",
    "not sure",
    "as far as i know",
    "to my knowledge",
    "it seems",
    "seems",
    "seem",
    "appears to",
    "appear to",
    "perhaps",
    "maybe",
    "possibly",
    "probably",
    "presumably",
    "potentially",
    "arguably",
    "likely",
    "unlikely",
    "might",
    "may",
    "could",
    "somewhat",
    "sort of",
    "kind of",
    "roughly",
    "approximately",
    "generally",
    "typically",
    "usually",
    "often",
    "sometimes",
    "tends to",
    "tend to",
    "in some cases",
    "to some extent",
    "it is possible",
    "it's possible",
    "i could be wrong",
    "i may be wrong",
    "i might be wrong",
)

#: Multi-word agreement with the user; counted anywhere in the response.
AGREEMENT_PHRASES: tuple[str, ...] = (
    "you're absolutely right",
    "you are absolutely right",
    "you're completely right",
    "you are completely right",
    "you're totally right",
    "you're right",
    "you are right",
    "you're correct",
    "you are correct",
    "you're spot on",
    "that's absolutely right",
    "that is absolutely right",
    "that's right",
    "that is right",
    "that's correct",
    "that is correct",
    "yes, exactly",
    "yes, absolutely",
    "i agree",
    "i completely agree",
    "i totally agree",
    "i fully agree",
    "i couldn't agree more",
    "great point",
    "good point",
    "excellent point",
    "fair point",
    "you make a great point",
    "you raise a great point",
    "well said",
    "spot on",
    "you're exactly right",
    "you are exactly right",
    "that's exactly right",
    "that is exactly right",
    "you're quite right",
    "you are quite right",
    "you're absolutely correct",
    "you are absolutely correct",
    "you're completely correct",
    "you are completely correct",
    "totally agree",
    "i'm with you",
    "i am with you",
    "exactly as you say",
    "that's so true",
    "you've got it",
    "you nailed it",
    "nailed it",
    "hit the nail on the head",
)

#: Single-word affirmations; counted only in the opener (see the module docstring).
AGREEMENT_OPENER_WORDS: tuple[str, ...] = (
    "absolutely",
    "exactly",
    "indeed",
    "definitely",
    "correct",
    "right",
    "yes",
    "yep",
    "of course",
    "true",
    "agreed",
)

#: Multi-word flattery / eager-to-please phrases; counted anywhere.
FLATTERY_PHRASES: tuple[str, ...] = (
    "great question",
    "good question",
    "excellent question",
    "fantastic question",
    "wonderful question",
    "brilliant question",
    "fascinating question",
    "interesting question",
    "insightful question",
    "thoughtful question",
    "what a great question",
    "what a fascinating question",
    "what a wonderful question",
    "what an interesting question",
    "that's a great question",
    "that is a great question",
    "i'd be happy to help",
    "i would be happy to help",
    "i'd be glad to help",
    "i'd love to help",
    "happy to help",
    "glad you asked",
    "thank you for asking",
    "thanks for asking",
    "thank you for your question",
    "what a great idea",
    "great idea",
    "you're so smart",
    "you clearly know",
    "you have a keen eye",
    "your curiosity is",
)

#: Single-word eager openers; counted only in the opener.
FLATTERY_OPENER_WORDS: tuple[str, ...] = (
    "certainly",
    "sure",
    "wow",
    "gladly",
)

FEATURE_DESCRIPTIONS: dict[str, str] = {
    "chars": "number of characters",
    "words": "number of words (letters/digits, joined by ' or -)",
    "tokens": "number of tokens (HF tokenizer if given, else the regex word-piece approximation)",
    "sentences": "number of sentences (non-code lines split at . ! ? + space)",
    "hedge_count": "matches of the HEDGES lexicon",
    "hedge_rate": "hedge_count per 100 words (NaN for an empty text)",
    "agreement": "agreement phrases anywhere + single-word affirmations in the opener",
    "flattery": "flattery phrases anywhere + single-word eager openers in the opener",
    "sentiment": "VADER compound sentiment in [-1, 1]",
    "list_items": "markdown list items (lines starting with -, *, +, bullet, or 1. / 1))",
    "bold": "markdown bold spans (**x** or __x__)",
    "headers": "markdown ATX headers (# to ######)",
    "code_blocks": "fenced code blocks (``` or ~~~; an unclosed fence counts)",
    "repeated_ngrams": "share of word 3-gram occurrences that repeat an earlier one (1 - distinct/total)",
    "distinct_1": "distinct words / words (NaN for an empty text)",
    "distinct_2": "distinct word bigrams / bigrams (NaN with fewer than 2 words)",
    "prompt_overlap": "share of the response's distinct words that also occur in the prompt (only with prompts)",
}

# ---------------------------------------------------------------------------
# Regexes
# ---------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+(?:['-]\w+)*")
_SENT_SPLIT_RE = re.compile(r"(?<=[.!?])\s+")
_HAS_WORD_RE = re.compile(r"\w")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_LIST_RE = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+\S")
_HEADER_RE = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_MARKER_RE = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)]|#{1,6})\s+")
_BOLD_RE = re.compile(r"\*\*(?=\S)[^*\n]+?\*\*|__(?=\S)[^_\n]+?__")
_TOKEN_PIECE_RE = re.compile(r"[^\W\d_]+|\d+|_+|[^\w\s]")


def _lexicon_regex(phrases: Sequence[str]) -> re.Pattern:
    ordered = sorted({p.lower() for p in phrases}, key=len, reverse=True)
    alternation = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ordered)
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


_HEDGE_RE = _lexicon_regex(HEDGES)
_AGREE_ANY_RE = _lexicon_regex(AGREEMENT_PHRASES)
_AGREE_OPEN_RE = _lexicon_regex(AGREEMENT_PHRASES + AGREEMENT_OPENER_WORDS)
_FLATTER_ANY_RE = _lexicon_regex(FLATTERY_PHRASES)
_FLATTER_OPEN_RE = _lexicon_regex(FLATTERY_PHRASES + FLATTERY_OPENER_WORDS)


def _normalize(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


# ---------------------------------------------------------------------------
# Building blocks (public so that tests and notebooks can reuse them)
# ---------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (see the module conventions)."""
    return [w.lower() for w in _WORD_RE.findall(_normalize(text))]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: each non-empty line, without a leading list or header marker,
    split at ``[.!?]`` + white space; segments without a word character are dropped."""
    out = []
    for line in text.splitlines():
        line = _MARKER_RE.sub("", line, count=1).strip()
        for seg in _SENT_SPLIT_RE.split(line):
            seg = seg.strip()
            if seg and _HAS_WORD_RE.search(seg):
                out.append(seg)
    return out


def count_phrases(text: str, phrases: Sequence[str]) -> int:
    """Non-overlapping, case-insensitive, word-bounded matches of ``phrases``."""
    return len(_lexicon_regex(phrases).findall(_normalize(text)))


def hedge_count(text: str) -> int:
    """Matches of :data:`HEDGES` in ``text``."""
    return len(_HEDGE_RE.findall(_normalize(text)))


_LEAD_SKIP_RE = re.compile(r"[^\w']*")


def _opener_weighted_count(text: str, any_re: re.Pattern, open_re: re.Pattern) -> int:
    """Lexicon items in the opener chain plus multi-word phrases in the rest."""
    text = _normalize(text)
    pos, n = 0, 0
    while True:
        pos = _LEAD_SKIP_RE.match(text, pos).end()
        m = open_re.match(text, pos)
        if m is None:
            break
        n += 1
        pos = m.end()
    return n + len(any_re.findall(text, pos))


def agreement_count(text: str) -> int:
    """Agreement phrases anywhere plus single-word affirmations in the opener."""
    return _opener_weighted_count(text, _AGREE_ANY_RE, _AGREE_OPEN_RE)


def flattery_count(text: str) -> int:
    """Flattery phrases anywhere plus single-word eager openers in the opener."""
    return _opener_weighted_count(text, _FLATTER_ANY_RE, _FLATTER_OPEN_RE)


def approx_token_count(text: str) -> int:
    """Regex word-piece approximation of a subword token count (see module docstring)."""
    n = 0
    for piece in _TOKEN_PIECE_RE.findall(text):
        c = piece[0]
        if c.isdigit():
            n += math.ceil(len(piece) / 3)
        elif c.isalpha():
            n += 1 + math.ceil(max(0, len(piece) - 6) / 4)
        else:  # underscores and single punctuation / symbol characters
            n += len(piece) if c == "_" else 1
    return n


def _strip_code(text: str) -> tuple[list[str], int]:
    """Lines outside fenced code blocks, and the number of fenced blocks."""
    outside, fences, inside = [], 0, False
    for line in text.splitlines():
        if _FENCE_RE.match(line):
            fences += 1
            inside = not inside
            continue
        if not inside:
            outside.append(line)
    return outside, (fences + 1) // 2


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _distinct(tokens: list[str], n: int) -> float:
    grams = _ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else float("nan")


def _repeated_share(tokens: list[str], n: int = 3) -> float:
    grams = _ngrams(tokens, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


_VADER = None


def _vader():
    global _VADER
    if _VADER is None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the 'sentiment' feature needs vaderSentiment: pip install vaderSentiment "
                "(or pip install 'rm-audit-workbench[analysis]')"
            ) from exc
        _VADER = SentimentIntensityAnalyzer()
    return _VADER


def token_counts(texts: list[str], tokenizer: Any) -> list[int]:
    """Token count of every text: the tokenizer's ``input_ids`` lengths, or :func:`approx_token_count` without one."""
    if tokenizer is None:
        return [approx_token_count(t) for t in texts]
    if not callable(tokenizer):
        raise TypeError("tokenizer must be a Hugging Face tokenizer (callable) or None")
    enc = tokenizer(texts, add_special_tokens=False)
    try:
        ids = enc["input_ids"]
    except (KeyError, TypeError, IndexError):
        raise TypeError(
            "tokenizer(texts, add_special_tokens=False) must return a mapping with 'input_ids' "
            "(a Hugging Face tokenizer)"
        ) from None
    if len(ids) != len(texts):
        raise ValueError(f"tokenizer returned {len(ids)} encodings for {len(texts)} texts")
    return [len(x) for x in ids]


def _check_texts(texts: Any, name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of strings, not a single string")
    if isinstance(texts, pd.Series):
        texts = texts.tolist()
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] is {type(t).__name__}, expected str")
    return texts


def extract_features(
    responses: Sequence[str],
    prompts: Sequence[str] | None = None,
    tokenizer: Any = None,
) -> pd.DataFrame:
    """One row per response, one column per feature (see :data:`FEATURE_DESCRIPTIONS`).

    Parameters
    ----------
    responses
        The texts to describe.
    prompts
        Optional prompts, one per response. When given, a ``prompt_overlap``
        column is added (share of the response's distinct words that occur in
        the prompt: a measure of echoing the user).
    tokenizer
        Optional Hugging Face tokenizer for the ``tokens`` column; without one
        :func:`approx_token_count` is used.

    The index of a ``pandas.Series`` input is kept; otherwise a RangeIndex.
    """
    index = responses.index if isinstance(responses, pd.Series) else None
    texts = _check_texts(responses, "responses")
    if prompts is not None:
        prompts = _check_texts(prompts, "prompts")
        if len(prompts) != len(texts):
            raise ValueError(f"prompts has {len(prompts)} items but responses has {len(texts)}")
    vader = _vader()
    tokens = token_counts(texts, tokenizer)

    rows = []
    for i, text in enumerate(texts):
        w = words(text)
        n_words = len(w)
        outside, n_code = _strip_code(text)
        hedges = hedge_count(text)
        row = {
            "chars": len(text),
            "words": n_words,
            "tokens": tokens[i],
            "sentences": len(split_sentences("\n".join(outside))),
            "hedge_count": hedges,
            "hedge_rate": 100.0 * hedges / n_words if n_words else float("nan"),
            "agreement": agreement_count(text),
            "flattery": flattery_count(text),
            "sentiment": vader.polarity_scores(text)["compound"],
            "list_items": sum(1 for line in outside if _LIST_RE.match(line)),
            "bold": sum(len(_BOLD_RE.findall(line)) for line in outside),
            "headers": sum(1 for line in outside if _HEADER_RE.match(line)),
            "code_blocks": n_code,
            "repeated_ngrams": _repeated_share(w, 3),
            "distinct_1": _distinct(w, 1),
            "distinct_2": _distinct(w, 2),
        }
        if prompts is not None:
            vocab = set(w)
            row["prompt_overlap"] = len(vocab & set(words(prompts[i]))) / len(vocab) if vocab else float("nan")
        rows.append(row)

    columns = list(FEATURE_DESCRIPTIONS)
    if prompts is None:
        columns.remove("prompt_overlap")
    frame = pd.DataFrame(rows, columns=columns, index=index)
    int_cols = [
        "chars",
        "words",
        "tokens",
        "sentences",
        "hedge_count",
        "agreement",
        "flattery",
        "list_items",
        "bold",
        "headers",
        "code_blocks",
    ]
    frame[int_cols] = frame[int_cols].astype(np.int64)
    float_cols = [c for c in columns if c not in int_cols]
    frame[float_cols] = frame[float_cols].astype(float)
    return frame
