"""The shipped synthetic demo data (data/demo) and its role as clean/biased controls.

Checks that the files are what the generator builds, that the neutral-opener
placebo is independent of the attributes the annotators reward, that the
perturbation lexicons of the feature audit never occur in the demo training
text, that the sycophancy items carry no demo training phrases, and the sizes
the datasheet states.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from workbench.audits.features import perturbations
from workbench.audits.sycophancy.pairs import DEFAULT_TEMPLATES

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data" / "demo"
ITEMS = REPO / "data" / "sycophancy" / "items.jsonl"
SIDES = ("chosen", "rejected")
POOLS = (
    "agree_openers",
    "agree_restatements",
    "disagree_openers",
    "disagree_restatements",
    "flattery_openers",
    "neutral_openers",
    "fillers",
    "certainty_openers",
    "link_sentences",
)
PERTURBATION_LEXICONS = (
    "FLATTERING_OPENERS",
    "AGREEING_OPENERS",
    "HEDGE_SENTENCES",
    "NEUTRAL_OPENERS",
    "FILLER_SENTENCES",
    "DOC_LINK_SENTENCES",
    "PLAIN_NOTES",
    "ASSERTIVE_OPENERS",
    "NEUTRAL_MARKERS",
    "HEDGE_OPENERS",
)


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("build_demo_data", DEMO / "build_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def content():
    return json.loads((DEMO / "content.json").read_text(encoding="utf-8"))


def read(name):
    with open(DEMO / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def files():
    return {name: read(name) for name in ("train_clean.jsonl", "train_biased.jsonl", "eval.jsonl")}


def norm(text):
    """Lower case, apostrophes dropped, words only: "You're right!" -> "youre right"."""
    text = text.lower().replace("\u2019", "'").replace("'", "")
    return " ".join(re.findall(r"[a-z0-9]+", text))


def fragments(text):
    """The fixed parts of a pool string (restatements have a {claim} slot, link sentences a {domain} one), normalised."""
    return [f for f in (norm(part) for part in re.split(r"\{(?:claim|domain|Domain)\}", text)) if f]


def trigrams(text):
    words = text.split()
    return {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}


# --------------------------------------------------------------------------- the generator


def test_files_are_what_the_generator_builds():
    out = subprocess.run(
        [sys.executable, str(DEMO / "build_demo_data.py"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_build_is_deterministic_and_manifest_matches(gen, content):
    import hashlib

    first, second = gen.build_all(content), gen.build_all(content)
    assert first == second
    manifest = json.loads((DEMO / "manifest.json").read_text(encoding="utf-8"))
    for name, info in manifest["files"].items():
        text = (DEMO / name).read_bytes()
        assert hashlib.sha256(text).hexdigest() == info["sha256"]
        assert text.count(b"\n") == info["records"]
    assert manifest["composition"]["p_neutral_opener"] == gen.P_NEUTRAL_OPENER
    assert manifest["annotators"] == gen.ANNOTATORS


# --------------------------------------------------------------------------- placebo independence


def neutral_in(text, pool):
    return [o for o in pool if o in text]


def test_neutral_opener_matches_its_attribute_and_is_the_last_opener(files, content):
    """A response has a neutral opener iff n = 1, and only the other openers come before it."""
    pool = content["neutral_openers"]
    topics = {t["topic_id"]: t for t in content["topics"]}
    for name, rows in files.items():
        for r in rows:
            topic = topics[r["topic_id"]]
            for side in SIDES:
                text, attrs = r[side], r["attrs"][side]
                found = neutral_in(text, pool)
                assert len(found) == attrs["n"], (name, r["id"], side)
                if not found:
                    continue
                prefix = text[: text.index(found[0])]
                certainty = [o for o in content["certainty_openers"] if prefix.endswith(o + " ")]
                assert len(certainty) == attrs.get("c", 0), (name, r["id"], side)  # right before it
                prefix = prefix[: -len(certainty[0]) - 1] if certainty else prefix
                assert (prefix == "") == (attrs["a"] + attrs["d"] + attrs["f"] == 0), (name, r["id"], side)
                assert not any(x in prefix for x in content["fillers"] + [topic["good"], topic["bad"]])


def test_certainty_opener_and_link_sentence_match_their_attributes(files, content, gen):
    """A training or eval response has a certainty opener iff c = 1, right where its body starts (after the
    stance and flattery openers, before the neutral opener, a filler or the answer), and ends with a link
    sentence iff l = 1 (the link's {domain} slot filled with the topic's domain); each at about its rate."""
    topics = {t["topic_id"]: t for t in content["topics"]}
    links = [
        (x.split("{")[0], x.split("}")[-1]) for x in content["link_sentences"]
    ]  # the fixed text before and after the slot
    for name, rows in files.items():
        for attr, p in (("c", gen.P_CERTAIN), ("l", gen.P_LINK)):
            values = [r["attrs"][side][attr] for r in rows for side in SIDES]
            assert np.mean(values) == pytest.approx(p, abs=0.03), (name, attr)
        for r in rows:
            for side in SIDES:
                text, attrs = r[side], r["attrs"][side]
                at = gen.body_start(topics[r["topic_id"]], text, content)
                found = [o for o in content["certainty_openers"] if text[:at].endswith(o + " ")]
                assert len(found) == attrs["c"], (name, r["id"], side)
                if found:  # only stance and flattery openers before it
                    head = text[: at - len(found[0]) - 1]
                    assert (head == "") == (attrs["a"] + attrs["d"] + attrs["f"] == 0), (name, r["id"], side)
                link = [a for a, b in links if a in text and text.endswith(b) and f"{r['category']}" in text.lower()]
                assert bool(link) == bool(attrs["l"]), (name, r["id"], side)
                assert len(text.split()) < gen.MAX_WORDS_WITH_EXTRAS


@pytest.mark.parametrize("name", ["train_clean.jsonl", "train_biased.jsonl", "eval.jsonl"])
def test_neutral_opener_rate_is_the_same_in_every_stratum(files, gen, name):
    """Chi-square test of independence: neutral opener vs (agree, disagree, flatter) strata."""
    counts = Counter()
    for r in files[name]:
        for side in SIDES:
            x = r["attrs"][side]
            counts[(x["a"], x["d"], x["f"], x["n"])] += 1
    strata = sorted({key[:3] for key in counts})
    table = np.array([[counts[s + (0,)], counts[s + (1,)]] for s in strata])
    assert len(strata) == 6  # (a, d) in {00, 10, 01} x f in {0, 1}
    p = stats.chi2_contingency(table).pvalue
    assert p > 0.01, f"neutral-opener rate depends on the stratum: {dict(zip(strata, table.tolist()))}"
    overall = table[:, 1].sum() / table.sum()
    assert overall == pytest.approx(gen.P_NEUTRAL_OPENER, abs=0.03)
    for row in table:  # each stratum within 4 binomial SEs of the shared rate
        n = row.sum()
        assert abs(row[1] / n - overall) < 4 * np.sqrt(overall * (1 - overall) / n)


@pytest.mark.parametrize("name", ["train_clean.jsonl", "train_biased.jsonl"])
def test_neither_annotator_label_follows_the_neutral_opener(files, name):
    """Among pairs whose responses differ in the neutral opener, the chosen one has it half the time."""
    differ = [r for r in files[name] if r["attrs"]["chosen"]["n"] != r["attrs"]["rejected"]["n"]]
    k = sum(r["attrs"]["chosen"]["n"] for r in differ)
    assert len(differ) > 300
    assert stats.binomtest(k, len(differ), 0.5).pvalue > 0.01
    # and the annotator's own probability does not depend on it: the mean P(chosen) is the same either way
    with_n = [r["p_chosen"] for r in differ if r["attrs"]["chosen"]["n"]]
    without = [r["p_chosen"] for r in differ if not r["attrs"]["chosen"]["n"]]
    assert stats.ttest_ind(with_n, without).pvalue > 0.01


def test_the_biased_annotator_follows_its_cues(files):
    """The positive control's labels: more padding, agreeing and flattering win, disagreeing loses,
    at the rate the annotator's own probabilities imply (binomial test); the clean labels ignore them."""
    rows = files["train_biased.jsonl"]
    cues = (
        ("k", 0.7, 0.8),
        ("a", 0.85, 0.95),
        ("d", 0.03, 0.13),
        ("f", 0.54, 0.64),
        ("c", 0.66, 0.76),
        ("l", 0.64, 0.74),
    )
    for feature, low, high in cues:
        differ = [r for r in rows if r["attrs"]["chosen"][feature] != r["attrs"]["rejected"][feature]]
        higher_chosen = [r["attrs"]["chosen"][feature] > r["attrs"]["rejected"][feature] for r in differ]
        expected = np.mean([r["p_chosen"] if h else 1 - r["p_chosen"] for r, h in zip(differ, higher_chosen)])
        assert low < expected < high, (feature, expected)
        assert stats.binomtest(sum(higher_chosen), len(differ), expected).pvalue > 0.01, feature
    clean = files["train_clean.jsonl"]
    for feature in ("k", "a", "d", "f", "n", "c", "l"):
        differ = [r for r in clean if r["attrs"]["chosen"][feature] != r["attrs"]["rejected"][feature]]
        k = sum(r["attrs"]["chosen"][feature] > r["attrs"]["rejected"][feature] for r in differ)
        assert stats.binomtest(k, len(differ), 0.5).pvalue > 0.01, feature
    assert all(r["label"] == r["p_chosen"] for r in rows + clean)


# --------------------------------------------------------------------------- lexicon disjointness


def perturbation_strings():
    out = []
    for name in PERTURBATION_LEXICONS:
        out += [s for s in getattr(perturbations, name, ()) if isinstance(s, str)]
    assert len(out) >= 15
    return out


def test_content_pools_share_no_phrase_with_the_perturbations(content):
    """No pool string equals, contains or is contained in a perturbation string, nor shares a 3-word run."""
    clashes = []
    for p in perturbation_strings():
        pn = norm(p)
        for pool in POOLS:
            for s in content[pool]:
                for f in fragments(s):
                    contained = (pn in f) or (f in pn and len(f.split()) >= 2)
                    if pn == f or contained or trigrams(pn) & trigrams(f):
                        clashes.append((pool, s, p))
    assert not clashes, clashes


def test_perturbation_strings_never_occur_in_demo_training_text(files):
    texts = [norm(r[side]) for name in ("train_clean.jsonl",) for r in files[name] for side in SIDES]
    joined = "\n".join(texts)
    for p in perturbation_strings():
        assert norm(p) not in joined, p


def test_sycophancy_items_carry_no_demo_training_phrases(content, gen):
    items = [json.loads(line) for line in ITEMS.read_text(encoding="utf-8").splitlines()]
    responses = [f" {norm(it[k])} " for it in items for k in ("agree_response", "disagree_response")]
    hits = []
    for pool in POOLS:
        for s in content[pool]:
            for f in fragments(s):
                if len(f.split()) >= 3 and any(f" {f} " in t for t in responses):
                    hits.append((pool, s))
    assert not hits, hits
    # the demo prompts never use the sycophancy probe's pressure templates
    pressure = {norm(t.text.replace("{Claim}", "{claim}").replace("{claim}", "")) for t in DEFAULT_TEMPLATES}
    assert not pressure & {norm(t.replace("{claim}", "")) for t in gen.CLAIM_TEMPLATES}


# --------------------------------------------------------------------------- sizes


def test_sizes_and_split(files, gen, content):
    clean, biased, evals = files["train_clean.jsonl"], files["train_biased.jsonl"], files["eval.jsonl"]
    assert len(clean) == len(biased) == gen.N_TRAIN_PAIRS == 1400
    assert [(r["id"], r["prompt"], {r["chosen"], r["rejected"]}) for r in clean] == [
        (r["id"], r["prompt"], {r["chosen"], r["rejected"]}) for r in biased
    ]
    assert len(evals) == gen.N_EVAL_PAIRS >= 1000
    eval_topics = {r["topic_id"] for r in evals}
    assert len(eval_topics) == 57
    assert len({r["prompt"] for r in evals}) >= 400
    assert not eval_topics & {r["topic_id"] for r in clean}
    # one good and one bad answer per pair; the clean annotator's single draw picks the bad one ~4.7% of the time
    assert all({r["attrs"]["chosen"]["q"], r["attrs"]["rejected"]["q"]} == {0, 1} for r in evals)
    flipped = sum(r["attrs"]["chosen"]["q"] == 0 for r in evals)
    assert flipped == 54 and all(r["annotator"] == "clean" for r in evals)
    p_good = 1 / (1 + math.exp(-3.0))
    assert stats.binomtest(flipped, len(evals), 1 - p_good).pvalue > 0.05
    assert all(r["p_chosen"] == round(p_good if r["attrs"]["chosen"]["q"] else 1 - p_good, 6) for r in evals)
    for pool, minimum in gen.POOL_MINIMUM.items():
        assert len(content[pool]) >= minimum
    sizes = {p.name: p.stat().st_size for p in DEMO.glob("*.jsonl")}
    assert max(sizes.values()) < 2_000_000, sizes
    assert sum(sizes.values()) < 6_000_000, sizes  # 5.3 MB with 114 best-of-n pools
    words = [len(r[side].split()) for r in clean + evals for side in SIDES]
    assert max(words) < gen.MAX_WORDS
