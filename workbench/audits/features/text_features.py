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
* **Links** (:func:`find_links`): Markdown links ``[text](url)`` (counted once, the URL
  inside not again), URLs with a scheme (``https://...``, also malformed ones such as
  ``htp://`` or ``https//``), ``www.`` hosts and bare domains such as
  ``docs.python.org/3/`` whose last label is one of :data:`LINK_TLDS` (a curated list that
  leaves out TLDs that are common file extensions, so ``setup.py`` or ``README.md`` are not
  links). ``www.`` hosts and bare domains inside code (fenced blocks, `inline spans`) are not
  counted; URLs with a scheme are. E-mail addresses are not links. A link **cannot resolve by construction**
  (``broken_links``) when its host is a placeholder (:data:`PLACEHOLDER_HOSTS` and their
  subdomains, the reserved TLDs of :data:`RESERVED_TLDS`, ``localhost``, a loopback, private
  or unspecified IP address) or it is malformed (unknown scheme, missing host, white space
  inside a Markdown link target, a single-label host, an empty label, a port above 65535).
  With an allow-list (``link_allowlist=``, :func:`load_link_allowlist`), ``unlisted_links``
  counts the other links whose host is neither an allowed host nor a subdomain of one.
  Nothing is looked up on the network.
* **Assertiveness** (``assertive_count``) matches :data:`ASSERTIVE_MARKERS` like the other
  lexicons (anywhere in the response). "certainly" and "definitely" are also opener words of
  the flattery and agreement lexicons, so in the opener they count there too.
* Ratios that are undefined (``hedge_rate`` of an empty text, ``distinct_2`` of
  a one-word text, ...) are ``NaN``; the probes in :mod:`workbench.audits.features.probes`
  drop non-finite values per feature and report the ``n`` they used.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "HEDGES",
    "AGREEMENT_PHRASES",
    "AGREEMENT_OPENER_WORDS",
    "FLATTERY_PHRASES",
    "FLATTERY_OPENER_WORDS",
    "ASSERTIVE_MARKERS",
    "LINK_TLDS",
    "PLACEHOLDER_HOSTS",
    "RESERVED_TLDS",
    "LINK_SCHEMES",
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
    "assertive_count",
    "Link",
    "find_links",
    "link_counts",
    "load_link_allowlist",
    "resolve_link_allowlist",
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

#: Assertive / certainty markers: the opposite of :data:`HEDGES` (boosters in Hyland's terms),
#: trimmed to phrases that state certainty rather than intensify ("absolutely", "of course"
#: and "clearly" are left out: they are mostly agreement or emphasis). Counted anywhere.
#: "100%" also counts in "100% cotton" (a slight over-count).
ASSERTIVE_MARKERS: tuple[str, ...] = (
    "certainly",
    "definitely",
    "definitively",
    "undoubtedly",
    "unquestionably",
    "undeniably",
    "indisputably",
    "without a doubt",
    "without any doubt",
    "beyond a doubt",
    "beyond any doubt",
    "beyond doubt",
    "no doubt",
    "there is no doubt",
    "there's no doubt",
    "no question",
    "without question",
    "there is no question",
    "guaranteed",
    "i guarantee",
    "100%",
    "100 percent",
    "i am certain",
    "i'm certain",
    "i am completely sure",
    "i'm completely sure",
    "i am 100% sure",
    "i'm 100% sure",
    "always works",
    "never fails",
    "trust me",
    "rest assured",
    "for sure",
    "make no mistake",
    "it is a fact",
    "it's a fact",
    "the fact is",
)

#: Top-level domains that make a bare ``name.tld`` a link. Curated: generic TLDs and common
#: country codes, without those that are also common file extensions (``.py``, ``.md``,
#: ``.sh``, ``.rs``, ``.pl``, ``.ps``; ``.js`` is not a TLD) or attribute names (``.int``,
#: ``.app``). The TLD must be written in lower case ("done.It" is a missing space, not a link).
#: A URL with a scheme needs no listed TLD.
LINK_TLDS: tuple[str, ...] = (
    "com", "org", "net", "edu", "gov", "io", "dev", "ai", "info", "biz", "co", "me", "tv", "us", "uk",
    "ca", "au", "de", "fr", "es", "it", "nl", "se", "no", "fi", "dk", "ch", "at", "be", "jp", "cn", "in",
    "br", "ru", "eu", "nz", "ie", "kr",
    "test", "example", "invalid", "localhost",
)  # fmt: skip

#: Hosts that are placeholders by construction (their subdomains too): RFC 2606 example
#: domains and "your domain" stand-ins.
PLACEHOLDER_HOSTS: tuple[str, ...] = (
    "example.com",
    "example.org",
    "example.net",
    "localhost",
    "yourdomain.com",
    "your-domain.com",
    "yoursite.com",
    "your-site.com",
    "yourwebsite.com",
    "your-website.com",
)

#: Reserved top-level domains that never resolve on the public internet (RFC 2606 / 6761).
RESERVED_TLDS: tuple[str, ...] = ("test", "example", "invalid", "localhost")

#: URL schemes taken as well formed; any other ``scheme://`` (``htp://``) is malformed.
LINK_SCHEMES: tuple[str, ...] = ("http", "https", "ftp", "ftps", "sftp", "ws", "wss", "git", "ssh", "file")

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
    "links": "links: Markdown links, URLs with a scheme, www. hosts and bare domains (find_links)",
    "link_density": "links per 100 words (NaN for an empty text)",
    "broken_links": "links that cannot resolve by construction: placeholder host or malformed URL",
    "unlisted_links": "well-formed links whose host is not on the allow-list (only with link_allowlist)",
    "assertive_count": "matches of the ASSERTIVE_MARKERS lexicon",
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
_ASSERT_RE = _lexicon_regex(ASSERTIVE_MARKERS)


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


def assertive_count(text: str) -> int:
    """Matches of :data:`ASSERTIVE_MARKERS` in ``text``."""
    return len(_ASSERT_RE.findall(_normalize(text)))


# ---------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------

_URL_CHARS = r"[^\s<>\"'`]"
_MD_LINK_RE = re.compile(r"!?\[[^\]\n]*\]\(([^)\n]*)\)")
_MD_TITLE_RE = re.compile(r"""^(\S+)\s+("[^"]*"|'[^']*'|\([^)]*\))$""")
_SCHEME_URL_RE = re.compile(rf"(?<![\w+.-])([a-z][a-z0-9+.-]{{0,15}})://({_URL_CHARS}*)", re.IGNORECASE)
_BROKEN_HTTP_RE = re.compile(rf"(?<![\w+.-])(https?)(?::/(?!/)|//)({_URL_CHARS}+)", re.IGNORECASE)
_WWW_RE = re.compile(rf"(?<![\w@./:-])(www\.{_URL_CHARS}+)", re.IGNORECASE)
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_LABEL_ANY_CASE = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_CODE_SPAN_RE = re.compile(r"`[^`\n]+`")
_DOMAIN_RE = re.compile(
    rf"(?<![\w@./:-])((?:{_LABEL_ANY_CASE}\.)+(?:{'|'.join(sorted(LINK_TLDS, key=len, reverse=True))}))(?![\w-])"
    rf"((?::\d+)?(?:[/?#]{_URL_CHARS}*)?)"
)
_SPACE_SPLIT_RE = re.compile(r" +\.[a-z]{2,}", re.IGNORECASE)
_HOST_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
_TRAILING = ".,;:!?*_"


@dataclass(frozen=True)
class Link:
    """One link found by :func:`find_links`.

    ``kind`` is ``"markdown"``, ``"url"`` (with a scheme), ``"www"`` or ``"domain"``; ``host``
    the lower-cased host (``""`` when there is none); ``problem`` why the link cannot resolve
    by construction (``""`` when it is well formed and not a placeholder).
    """

    text: str
    kind: str
    host: str
    problem: str = ""


def _trim(url: str) -> str:
    """Strip trailing sentence punctuation and unbalanced closing brackets from a URL."""
    while url:
        c = url[-1]
        if c in _TRAILING or (c == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        elif c == "]" and url.count("[") < url.count("]"):
            url = url[:-1]
        else:
            break
    return url


def _host_problem(host: str) -> str:
    """Why a host cannot resolve by construction ("" when it can)."""
    if not host:
        return "missing host"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        bad = ip.is_private or ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_reserved
        return "local or reserved address" if bad or ip.is_multicast else ""
    name = host[:-1] if host.endswith(".") else host
    if name in PLACEHOLDER_HOSTS or any(name.endswith("." + p) for p in PLACEHOLDER_HOSTS):
        return "placeholder host"
    if not _HOST_RE.match(name):
        return "malformed host"
    labels = name.split(".")
    if labels[-1] in RESERVED_TLDS:
        return "reserved TLD"
    if len(labels) < 2:
        return "single-label host"
    if labels[-1].isdigit():
        return "malformed host"
    return ""


def _split_authority(rest: str) -> tuple[str, str]:
    """``(host, problem)`` of the part after ``scheme://``: user info and port removed, the port checked."""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    authority = authority.rsplit("@", 1)[-1]
    host, port = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        host, port = (authority[: end + 1], authority[end + 2 :]) if end > 0 else (authority, "")
    elif authority.count(":") == 1:
        host, port = authority.split(":")
    if port and (not port.isdigit() or int(port) > 65535):
        return host.lower(), "bad port"
    return host.lower(), ""


def _analyse(url: str, kind: str, default_scheme: str = "") -> Link:
    """A :class:`Link` for ``url`` (a Markdown target, a URL, a www. host or a bare domain)."""
    if not url:
        return Link(url, kind, "", "missing URL")
    if re.search(r"\s", url):
        m = re.match(r"^([a-z][a-z0-9+.-]*)://([^\s/?#]*)", url, re.IGNORECASE)
        return Link(url, kind, (m.group(2).lower() if m else ""), "space in URL")
    m = re.match(r"^([a-z][a-z0-9+.-]*):(//)?(.*)$", url, re.IGNORECASE | re.DOTALL)
    if m and (m.group(2) or m.group(1).lower() in ("http", "https")):
        scheme, rest = m.group(1).lower(), m.group(3)
        if not m.group(2):
            return Link(url, kind, "", "malformed scheme separator")
        host, problem = _split_authority(rest)
        if scheme not in LINK_SCHEMES:
            return Link(url, kind, host, "bad scheme")
        return Link(url, kind, host, problem or _host_problem(host))
    if m and m.group(1).lower() in ("mailto", "tel"):
        return Link(url, kind, "", "")
    b = _BROKEN_HTTP_RE.match(url)
    if b:
        return Link(url, kind, "", "malformed scheme separator")
    if url.startswith(("/", "#", "./", "../")) or "." not in re.split(r"[/?#]", url, maxsplit=1)[0]:
        return Link(url, kind, "", "relative link (no host)")
    host, problem = _split_authority(url)
    return Link(url, kind, host, problem or _host_problem(host))


def _line_starts(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, line.rstrip("\r\n")))
        pos += len(line)
    return out


def find_links(text: str) -> list[Link]:
    """Every link in ``text``, in order of kind (Markdown, URLs, www., bare domains); see the module docstring."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    out: list[Link] = []
    chars = list(text)

    def blank(a: int, b: int) -> None:
        chars[a:b] = " " * (b - a)

    for m in _MD_LINK_RE.finditer(text):
        target = m.group(1).strip()
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1].strip()
        t = _MD_TITLE_RE.match(target)
        out.append(_analyse(t.group(1) if t else target, "markdown"))
        blank(m.start(), m.end())
    for regex, kind in ((_SCHEME_URL_RE, "url"), (_BROKEN_HTTP_RE, "url"), (_WWW_RE, "www"), (_DOMAIN_RE, "domain")):
        if kind == "www":  # bare hosts: not inside code (``np.int``, ``df.at``), only written-out URLs are
            in_code = False
            for line_start, line in _line_starts("".join(chars)):
                if _FENCE_RE.match(line):
                    blank(line_start, line_start + len(line))
                    in_code = not in_code
                elif in_code:
                    blank(line_start, line_start + len(line))
            for c in _CODE_SPAN_RE.finditer("".join(chars)):
                blank(c.start(), c.end())
        scan = "".join(chars)
        for m in regex.finditer(scan):
            url = _trim(m.group(0))
            if not url:
                continue
            link = _analyse(url, kind)
            if not link.problem and _SPACE_SPLIT_RE.match(scan, m.start() + len(url)):
                link = Link(url, kind, link.host, "space in URL")
            out.append(link)
            blank(m.start(), m.start() + len(url))
    return out


def _normalize_host(entry: str) -> str:
    entry = entry.strip().lower()
    if "://" in entry:
        entry = entry.split("://", 1)[1]
    entry = re.split(r"[/?#]", entry, maxsplit=1)[0].rsplit("@", 1)[-1]
    if entry.startswith("*."):
        entry = entry[2:]
    if re.match(r"^[^:\[\]]+:\d+$", entry):
        entry = entry.rsplit(":", 1)[0]
    return entry[:-1] if entry.endswith(".") else entry


def load_link_allowlist(path: str | os.PathLike) -> frozenset[str]:
    """Allowed link hosts from a plain text file: one host per line, ``#`` starts a comment.

    An entry allows the host itself and its subdomains (``python.org`` allows
    ``docs.python.org``); a leading ``*.``, a scheme, a path or a port are ignored. A missing
    file or an entry that is not a host name is a ``ValueError`` / ``FileNotFoundError`` that
    names the file (and line).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"link allow-list file not found: {str(p)!r}; pass the path of a plain text file with one host per "
            "line ('#' starts a comment), or leave link_allowlist empty to skip the allow-list check"
        )
    hosts = set()
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        host = _normalize_host(entry)
        if not host or not _HOST_RE.match(host):
            raise ValueError(
                f"link allow-list {str(p)!r} line {n}: {entry!r} is not a host name; write one host per line, "
                "e.g. docs.python.org ('#' starts a comment)"
            )
        hosts.add(host)
    return frozenset(hosts)


def resolve_link_allowlist(allowlist: Any) -> frozenset[str] | None:
    """The allowed hosts of ``allowlist``: None, a file path (:func:`load_link_allowlist`) or a collection of hosts."""
    if allowlist is None:
        return None
    if isinstance(allowlist, (str, os.PathLike)):
        return load_link_allowlist(allowlist)
    if isinstance(allowlist, Iterable):
        hosts = []
        for h in allowlist:
            if not isinstance(h, str):
                raise TypeError(f"link_allowlist hosts must be strings, got {type(h).__name__}")
            hosts.append(_normalize_host(h))
        return frozenset(h for h in hosts if h)
    raise TypeError(
        f"link_allowlist must be a file path, a collection of host names or None, got {type(allowlist).__name__}"
    )


def _allowed(host: str, allowlist: frozenset[str]) -> bool:
    host = host[:-1] if host.endswith(".") else host
    parts = host.split(".")
    return any(".".join(parts[i:]) in allowlist for i in range(len(parts)))


def link_counts(text: str, allowlist: Any = None) -> dict[str, int]:
    """``{"links", "broken_links"}`` of ``text``, plus ``"unlisted_links"`` with an allow-list.

    ``allowlist`` is a file path (:func:`load_link_allowlist`), a collection of host names or None.
    """
    allow = resolve_link_allowlist(allowlist)
    found = find_links(text)
    out = {"links": len(found), "broken_links": sum(1 for x in found if x.problem)}
    if allow is not None:
        out["unlisted_links"] = sum(1 for x in found if not x.problem and x.host and not _allowed(x.host, allow))
    return out


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
    link_allowlist: Any = None,
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
    link_allowlist
        Optional allow-list of link hosts: the path of a plain text file (one host per line,
        ``#`` comments; :func:`load_link_allowlist`) or a collection of host names. When
        given, an ``unlisted_links`` column counts the well-formed links whose host is not on
        it (subdomains of a listed host are allowed). No network access.

    The index of a ``pandas.Series`` input is kept; otherwise a RangeIndex.
    """
    index = responses.index if isinstance(responses, pd.Series) else None
    texts = _check_texts(responses, "responses")
    if prompts is not None:
        prompts = _check_texts(prompts, "prompts")
        if len(prompts) != len(texts):
            raise ValueError(f"prompts has {len(prompts)} items but responses has {len(texts)}")
    allow = resolve_link_allowlist(link_allowlist)
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
        found = find_links(text)
        row["links"] = len(found)
        row["link_density"] = 100.0 * len(found) / n_words if n_words else float("nan")
        row["broken_links"] = sum(1 for x in found if x.problem)
        if allow is not None:
            row["unlisted_links"] = sum(1 for x in found if not x.problem and x.host and not _allowed(x.host, allow))
        row["assertive_count"] = assertive_count(text)
        if prompts is not None:
            vocab = set(w)
            row["prompt_overlap"] = len(vocab & set(words(prompts[i]))) / len(vocab) if vocab else float("nan")
        rows.append(row)

    columns = list(FEATURE_DESCRIPTIONS)
    if prompts is None:
        columns.remove("prompt_overlap")
    if allow is None:
        columns.remove("unlisted_links")
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
        "links",
        "broken_links",
        "assertive_count",
    ] + (["unlisted_links"] if allow is not None else [])
    frame[int_cols] = frame[int_cols].astype(np.int64)
    float_cols = [c for c in columns if c not in int_cols]
    frame[float_cols] = frame[float_cols].astype(float)
    return frame
