"""Data checks before an audit: ``workbench doctor`` (issue 14).

:func:`diagnose` loads a preference set with ``on_error="skip"`` and counts what
would make an audit's numbers wrong or hard to read, each with the source rows
(``"line 7"`` for JSON lines, ``"row 7"`` otherwise, as in error messages):

``skipped``
    Rows the loader dropped, grouped by field and kind of problem.
``duplicate_ids``
    Rows whose id was already used (the loader skips them).
``duplicate_pairs``
    Loaded rows that repeat an earlier row's conversation, ``chosen`` and
    ``rejected`` exactly (each repeat counts once; the first row is not counted).
``identical_pairs``
    Pairs whose two responses are the same (skipped by the loader) or differ only
    in whitespace (loaded).
``contradicting_votes``
    Rows whose label contradicts their own vote counts (skipped by the loader),
    plus loaded rows that compare the same two responses to the same conversation
    as an earlier row but prefer the other one (every row of such a group
    after the first that disagrees with it).
``prompt_mismatches``
    Chat-message rows whose ``chosen`` and ``rejected`` conversations, or whose
    ``prompt`` and conversations, disagree (skipped by the loader), plus HH-RLHF
    pairs whose two transcripts continue different conversations (kept by the
    loader with the chosen transcript's context and flagged ``prompt_mismatch``).
``truncated``
    Pairs with a response truncated at the model's ``max_length`` (only when a
    ``truncated`` function is given; ``workbench doctor --model`` passes the RM's).

The report is *clean* when every count is 0. ``workbench doctor`` exits with 0
when clean, 1 when anything was found and 2 when the data cannot be read at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.data.preferences import PreferenceSet, SkippedRow
from workbench.data.shipped import load_data

__all__ = ["DOCTOR_CHECKS", "DoctorFinding", "DoctorReport", "diagnose", "skip_kind"]

DOCTOR_CHECKS: tuple[str, ...] = (
    "skipped",
    "duplicate_ids",
    "duplicate_pairs",
    "identical_pairs",
    "contradicting_votes",
    "prompt_mismatches",
    "truncated",
)
_TITLES = {
    "skipped": "rows skipped by the loader",
    "duplicate_ids": "duplicate ids",
    "duplicate_pairs": "exact duplicate pairs",
    "identical_pairs": "identical chosen and rejected",
    "contradicting_votes": "contradicting votes",
    "prompt_mismatches": "chosen/rejected prompt mismatches",
    "truncated": "pairs truncated at max_length",
}
_ADVICE = {
    "skipped": "fix the rows named below or leave them out; audits with on_error='skip' drop them",
    "duplicate_ids": "give every row its own id (the loader keeps the first use only)",
    "duplicate_pairs": "drop repeated pairs: they count twice in every accuracy and interval",
    "identical_pairs": "a pair needs two different responses; drop or fix these rows",
    "contradicting_votes": "fix the label or the votes, or keep one judgement per pair",
    "prompt_mismatches": "chosen and rejected must continue the same conversation",
    "truncated": "the RM sees a cut text: raise max_length or shorten the responses",
}
# (kind, pattern on SkippedRow.reason): the first that matches names the problem
_SKIP_KINDS: tuple[tuple[str, re.Pattern], ...] = (
    ("duplicate_id", re.compile(r"^duplicate id ")),
    ("identical_pair", re.compile(r"^identical to ")),
    ("contradicting_votes", re.compile(r"contradicts the votes")),
    ("prompt_mismatch", re.compile(r"does not match the final user message|differs from .* \(first difference")),
    ("invalid_unicode", re.compile(r"invalid UTF-8|lone surrogate")),
    ("nan", re.compile(r"got NaN")),
    ("invalid_json", re.compile(r"invalid JSON|not valid JSON")),
    ("split_row", re.compile(r"bare carriage return")),
    ("field_count", re.compile(r"^expected \d+ fields, got \d+")),
)
_WHITESPACE = re.compile(r"\s+")


def skip_kind(reason: str) -> str:
    """The kind of a skip reason: ``duplicate_id``, ``identical_pair``, ``contradicting_votes``,
    ``prompt_mismatch``, ``invalid_unicode``, ``nan``, ``invalid_json``, ``split_row``,
    ``field_count``, or else the reason up to its ``", got ..."`` part (``"expected a non-empty string"``)."""
    for kind, pattern in _SKIP_KINDS:
        if pattern.search(reason):
            return kind
    return re.split(r",? got ", reason, maxsplit=1)[0].strip()


@dataclass
class DoctorFinding:
    """One check: how many rows it found and up to ``n_examples`` of them.

    ``examples`` are short texts naming source rows (``"line 4 repeats line 1"``);
    ``groups`` (for ``skipped`` only) splits the count by field and kind of problem.
    """

    check: str
    count: int
    examples: list[str] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)
    note: str = ""

    @property
    def title(self) -> str:
        return _TITLES[self.check]

    @property
    def advice(self) -> str:
        return _ADVICE[self.check]

    def to_dict(self) -> dict:
        return {
            "check": self.check,
            "title": self.title,
            "count": int(self.count),
            "examples": list(self.examples),
            "groups": [dict(g) for g in self.groups],
            "note": self.note,
            "advice": self.advice if self.count else "",
        }


@dataclass
class DoctorReport:
    """What :func:`diagnose` found in one data set (see the module docstring)."""

    source: str
    n_read: int
    n_loaded: int
    findings: list[DoctorFinding]
    truncation_checked: bool = False
    max_length: int | None = None
    model: str | None = None

    def finding(self, check: str) -> DoctorFinding:
        """The finding of one check (a name from :data:`DOCTOR_CHECKS`)."""
        for f in self.findings:
            if f.check == check:
                return f
        raise KeyError(f"no check {check!r}; checks: {list(DOCTOR_CHECKS)}")

    @property
    def counts(self) -> dict[str, int]:
        return {f.check: int(f.count) for f in self.findings}

    @property
    def clean(self) -> bool:
        """True when every count is 0."""
        return not any(f.count for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when something was found (2, unreadable data, never gets this far)."""
        return 0 if self.clean else 1

    def to_dict(self) -> dict:
        """JSON-safe: source, counts, each finding with its examples, and the exit status."""
        return {
            "source": self.source,
            "rows_read": int(self.n_read),
            "rows_loaded": int(self.n_loaded),
            "clean": self.clean,
            "exit_code": self.exit_code,
            "counts": self.counts,
            "truncation": {"checked": self.truncation_checked, "model": self.model, "max_length": self.max_length},
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON (ASCII only, so control characters in the data stay escaped)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=True)

    def to_text(self) -> str:
        """A plain-text report; data-derived text is shown with :func:`repr`-style escapes."""
        lines = [
            f"workbench doctor: {_safe(self.source)}",
            f"  rows read {self.n_read}, loaded {self.n_loaded}, skipped {self.finding('skipped').count}",
        ]
        for f in self.findings:
            status = "FOUND" if f.count else "ok   "
            note = f" ({f.note})" if f.note else ""
            lines.append(f"  {status} {f.title}: {f.count}{note}")
            if f.count:
                lines.append(f"        {f.advice}")
            for group in f.groups:
                where = f"field {_safe(group['field'])!r}: " if group["field"] is not None else ""
                shown = ", ".join(group["rows"])
                lines.append(f"        {group['count']} x {where}{_safe(group['kind'])} ({shown})")
                lines.append(f"          e.g. {_safe(group['example'])}")
            if f.examples and not f.groups:
                lines.append(f"        e.g. {'; '.join(_safe(e) for e in f.examples)}")
        found = [f.title for f in self.findings if f.count]
        if found:
            lines.append(f"{len(found)} check(s) found problems: {', '.join(found)} (exit status 1)")
        else:
            lines.append("clean: nothing found (exit status 0)")
        return "\n".join(lines)


def _safe(text: Any) -> str:
    """Text for a terminal: control and format characters (ANSI escapes, RTL overrides) escaped."""
    text = str(text)
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _skip_row(s: SkippedRow) -> str:
    return s.location


def _skipped_finding(skipped: list[SkippedRow], n_examples: int) -> DoctorFinding:
    groups: dict[tuple, list[SkippedRow]] = {}
    for s in skipped:
        groups.setdefault((s.field, skip_kind(s.reason)), []).append(s)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), str(item[0][0]), item[0][1]))
    return DoctorFinding(
        "skipped",
        len(skipped),
        examples=[str(s) for s in skipped[:n_examples]],
        groups=[
            {
                "field": fld,
                "kind": kind,
                "count": len(rows),
                "rows": [_skip_row(s) for s in rows[:n_examples]],
                "example": rows[0].reason,
            }
            for (fld, kind), rows in ordered
        ],
    )


def _from_skips(kind: str, skipped: list[SkippedRow], n_examples: int) -> tuple[int, list[str]]:
    rows = [s for s in skipped if skip_kind(s.reason) == kind]
    return len(rows), [f"{s.location}: {s.reason}" for s in rows[:n_examples]]


def diagnose(
    data: Any,
    *,
    split: str | None = None,
    format: str | None = None,
    columns: Mapping[str, str] | None = None,
    truncated: Callable[[str, str, list | None], bool] | None = None,
    max_length: int | None = None,
    model: str | None = None,
    n_examples: int = 5,
) -> DoctorReport:
    """Check a preference set before an audit.

    Parameters
    ----------
    data : str, path or PreferenceSet
        A data spec as for :func:`~workbench.data.shipped.load_data` (shipped
        names, files, ``save_to_disk`` folders, ``hf:`` names), loaded with
        ``on_error="skip"``, or a set already loaded.
    split, format, columns
        Passed to the loader.
    truncated : callable, optional
        ``truncated(prompt, response, history) -> bool``: whether the model
        would see ``response`` cut (e.g. ``rm.encode(rm.format(...))[1]``).
        Without it the ``truncated`` check is not run (count 0, noted).
    max_length, model : optional
        Shown with the truncation count.
    n_examples : int
        Rows named per finding.

    Raises
    ------
    FileNotFoundError, ~workbench.data.preferences.DataFormatError, ValueError
        When the data cannot be read at all (no usable rows, an unreadable
        file, a bad spec): ``workbench doctor`` exits with 2.
    """
    if isinstance(data, PreferenceSet):
        ps = data
    else:
        ps = load_data(data, on_error="skip", split=split, format=format, columns=columns)
    frame = ps.frame
    skipped = list(ps.skipped)
    label = ps.row_label
    findings = [_skipped_finding(skipped, n_examples)]

    n, ex = _from_skips("duplicate_id", skipped, n_examples)
    findings.append(DoctorFinding("duplicate_ids", n, ex))

    # exact duplicates of an earlier loaded row (same conversation, chosen and rejected)
    first: dict[tuple, int] = {}
    dup_examples: list[str] = []
    n_dup = 0
    pair_first: dict[tuple, tuple[int, str, float]] = {}
    contra_examples: list[str] = []
    n_contra = 0
    near_examples: list[str] = []
    n_near = 0
    histories = frame["history"].tolist()
    for i, (prompt, chosen, rejected, lab) in enumerate(
        zip(frame["prompt"], frame["chosen"], frame["rejected"], frame["label"])
    ):
        context = (_key(histories[i]), prompt)
        key = (*context, chosen, rejected)
        if key in first:
            n_dup += 1
            if len(dup_examples) < n_examples:
                dup_examples.append(f"{label(i)} repeats {label(first[key])}")
        else:
            first[key] = i
        # the same two responses, either order: does this row prefer the same one as the first such row?
        a, b = sorted((chosen, rejected))
        prefers_a = lab if chosen == a else 1.0 - lab  # probability that response a is preferred
        pkey = (*context, a, b)
        if pkey in pair_first:
            j, _, first_pref = pair_first[pkey]
            if (first_pref - 0.5) * (prefers_a - 0.5) < 0:
                n_contra += 1
                if len(contra_examples) < n_examples:
                    contra_examples.append(f"{label(i)} prefers the other response than {label(j)}")
        else:
            pair_first[pkey] = (i, a, prefers_a)
        if _WHITESPACE.sub(" ", chosen).strip() == _WHITESPACE.sub(" ", rejected).strip():
            n_near += 1
            if len(near_examples) < n_examples:
                near_examples.append(f"{label(i)}: chosen and rejected differ only in whitespace")
    findings.append(DoctorFinding("duplicate_pairs", n_dup, dup_examples))

    n, ex = _from_skips("identical_pair", skipped, n_examples)
    findings.append(DoctorFinding("identical_pairs", n + n_near, (ex + near_examples)[:n_examples]))

    n, ex = _from_skips("contradicting_votes", skipped, n_examples)
    findings.append(DoctorFinding("contradicting_votes", n + n_contra, (ex + contra_examples)[:n_examples]))

    n, ex = _from_skips("prompt_mismatch", skipped, n_examples)
    # HH-RLHF pairs whose transcripts continue different conversations are kept and flagged
    kept = [f for f in ps.flagged if f.kind == "prompt_mismatch"]
    n_kept = len({f.id for f in kept})
    ex += [f"{f.location} (id {f.id!r}, kept): {f.reason}" for f in kept]
    note = f"{n_kept} kept with the chosen transcript's context" if n_kept else ""
    findings.append(DoctorFinding("prompt_mismatches", n + n_kept, ex[:n_examples], note=note))

    if truncated is None:
        findings.append(DoctorFinding("truncated", 0, note="not checked: pass --model to check truncation"))
    else:
        n_trunc, trunc_examples = 0, []
        for i, (prompt, chosen, rejected) in enumerate(zip(frame["prompt"], frame["chosen"], frame["rejected"])):
            hist = histories[i]
            sides = [
                name for name, text in (("chosen", chosen), ("rejected", rejected)) if truncated(prompt, text, hist)
            ]
            if sides:
                n_trunc += 1
                if len(trunc_examples) < n_examples:
                    trunc_examples.append(f"{label(i)}: {' and '.join(sides)}")
        note = f"max_length {max_length}" if max_length is not None else ""
        if model:
            note = f"{model}, {note}" if note else str(model)
        findings.append(DoctorFinding("truncated", n_trunc, trunc_examples, note=note))

    return DoctorReport(
        source=ps.source,
        n_read=int(ps.n_read),
        n_loaded=len(ps),
        findings=findings,
        truncation_checked=truncated is not None,
        max_length=max_length,
        model=model,
    )
