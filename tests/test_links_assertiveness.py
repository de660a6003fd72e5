"""Link and assertiveness probes (issue 18, items 1 and 2): hand-worked feature values, the allow-list
file, the perturbations and their placebos, the two graded families on a tiny real model, and the
known answer: a score function that pays for links fails "links", one that pays for certainty
markers fails "assertiveness", a neutral one passes both."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.audits.features import (
    ASSERTIVE_MARKERS,
    ASSERTIVE_OPENERS,
    DOC_LINK_SENTENCES,
    FAMILIES,
    HEDGE_OPENERS,
    NEUTRAL_MARKERS,
    PERTURBATION_FAMILIES,
    PERTURBATIONS,
    PLACEBO_CONTROLS,
    PLAIN_NOTES,
    add_doc_link,
    agreement_count,
    append_plain_note,
    assert_confidently,
    assertive_count,
    extract_features,
    feature_audit,
    find_links,
    flattery_count,
    hedge_count,
    link_counts,
    load_link_allowlist,
    neutral_rewrite,
    soften_assertion,
)
from workbench.audits.features.simulation import perturbation_check_verdict
from workbench.audits.overview import overview
from workbench.audits.simulation import FAMILY_ORDER
from workbench.data import load_data
from workbench.models import load_reward_model, score_pairs

ROOT = Path(__file__).resolve().parents[1]

# =========================================================================== link features


def _problems(text):
    return [(x.text, x.kind, x.host, x.problem) for x in find_links(text)]


def test_link_kinds_hand_worked():
    text = (
        'See [the guide](https://docs.python.org/3/ "Python docs") and https://github.com/a/b. '
        "Or visit docs.djangoproject.com/en/5.0/ and www.w3.org, or mail bob@python.org."
    )
    got = _problems(text)
    assert got == [
        ("https://docs.python.org/3/", "markdown", "docs.python.org", ""),  # the title is not part of the URL
        ("https://github.com/a/b", "url", "github.com", ""),  # trailing "." stripped
        ("www.w3.org", "www", "www.w3.org", ""),
        ("docs.djangoproject.com/en/5.0/", "domain", "docs.djangoproject.com", ""),
    ]  # the e-mail address is not a link; the Markdown target is not counted a second time
    assert link_counts(text) == {"links": 4, "broken_links": 0}


def test_not_links_file_names_code_and_abbreviations():
    text = (
        "Edit setup.py and README.md, import Node.js, e.g. i.e. U.S. done.It works; `docs.python.org` in code "
        "and `df.at` is an attribute.\n```\nrequests.get(url)  # see example.com\n```"
    )
    assert find_links(text) == []
    # a URL with a scheme counts even inside code: it is written out as a link
    assert link_counts("`https://docs.python.org/3/`")["links"] == 1


def test_broken_links_by_construction():
    cases = {
        "https://example.com/x": "placeholder host",
        "http://docs.example.org": "placeholder host",
        "see api.example.net/v1": "placeholder host",
        "http://localhost:8000/x": "placeholder host",
        "http://127.0.0.1/": "local or reserved address",
        "http://192.168.1.10/admin": "local or reserved address",
        "https://site.test/": "reserved TLD",
        "https://thing.invalid": "reserved TLD",
        "https://docs.example/": "reserved TLD",
        "htp://python.org": "bad scheme",
        "https//python.org": "malformed scheme separator",
        "http:/python.org": "malformed scheme separator",
        "https:///path/only": "missing host",
        "https://docs/path": "single-label host",
        "https://docs..python.org/": "malformed host",
        "https://python.org:99999/": "bad port",
        "[docs](https://docs.python .org/3/)": "space in URL",
        "[docs]()": "missing URL",
        "[docs](/local/page.html)": "relative link (no host)",
    }
    for text, problem in cases.items():
        (link,) = find_links(text)
        assert link.problem == problem, (text, link)
    fine = ["https://8.8.8.8/", "ftp://ftp.gnu.org/gnu/", "https://en.wikipedia.org/wiki/Foo_(bar)"]
    for text in fine:
        (link,) = find_links(text)
        assert link.problem == "", (text, link)
    assert find_links("(see https://en.wikipedia.org/wiki/Foo_(bar)).")[0].text.endswith("Foo_(bar)")


def test_extract_features_link_columns_and_density():
    texts = [
        "Read https://docs.python.org/3/ and [this](https://example.com/a) today.",  # 2 links, 1 broken, 6 words?
        "No links here at all.",
        "",
    ]
    f = extract_features(texts)
    assert "unlisted_links" not in f.columns
    assert f["links"].tolist() == [2, 0, 0]
    assert f["broken_links"].tolist() == [1, 0, 0]
    assert f["links"].dtype == np.int64 and f["broken_links"].dtype == np.int64
    n_words = f["words"].to_numpy(float)
    assert f["link_density"].iloc[0] == pytest.approx(100 * 2 / n_words[0])
    assert f["link_density"].iloc[1] == 0.0 and np.isnan(f["link_density"].iloc[2])


# =========================================================================== allow-list


def test_allowlist_file_comments_subdomains_and_unlisted_count(tmp_path):
    path = tmp_path / "hosts.txt"
    path.write_text(
        "# documentation hosts\npython.org  # and its subdomains\n\n*.github.com\nhttps://developer.mozilla.org/en-US/\n",
        encoding="utf-8",
    )
    assert load_link_allowlist(path) == frozenset({"python.org", "github.com", "developer.mozilla.org"})
    text = (
        "See https://docs.python.org/3/, https://gist.github.com/x, https://developer.mozilla.org/docs, "
        "https://stackoverflow.com/q/1, www.w3.org and https://example.com/placeholder."
    )
    counts = link_counts(text, path)
    # 6 links; example.com is broken (counted there, not as unlisted); stackoverflow.com and www.w3.org unlisted
    assert counts == {"links": 6, "broken_links": 1, "unlisted_links": 2}
    f = extract_features([text, "plain"], link_allowlist=str(path))
    assert f["unlisted_links"].tolist() == [2, 0] and f["unlisted_links"].dtype == np.int64
    assert extract_features([text], link_allowlist={"python.org"})["unlisted_links"].iloc[0] == 4
    assert "python.org" in load_link_allowlist(str(path))  # str paths too


def test_allowlist_errors_name_the_file_and_line(tmp_path):
    missing = tmp_path / "nope" / "hosts.txt"
    with pytest.raises(
        FileNotFoundError, match=r"link allow-list file not found: .*nope.*hosts\.txt.*one host per line"
    ):
        extract_features(["x"], link_allowlist=missing)
    bad = tmp_path / "bad.txt"
    bad.write_text("python.org\nnot a host name\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt.* line 2: 'not a host name' is not a host name.*one host per line"):
        load_link_allowlist(bad)
    with pytest.raises(TypeError, match="link_allowlist must be a file path"):
        extract_features(["x"], link_allowlist=3)
    # the audit passes it through and says the same
    df = pd.DataFrame({"prompt": ["q"] * 4, "chosen": ["a b", "c d", "e f", "g h"], "rejected": ["i", "j", "k", "l"]})
    with pytest.raises(FileNotFoundError, match="nope"):
        feature_audit(df, (np.ones(4), np.zeros(4)), n_boot=0, perturb_sample=0, link_allowlist=missing)


# =========================================================================== assertiveness lexicon


def test_assertive_count_hand_worked():
    assert assertive_count("Certainly, this always works. I'm 100% sure, without a doubt. There is no doubt.") == 5
    assert assertive_count("It is guaranteed. Definitely! Undoubtedly so; trust me, no question.") == 5
    assert assertive_count("I think it might work, probably.") == 0
    assert assertive_count("There’s no doubt") == 1  # curly apostrophe, longest phrase counted once
    assert assertive_count("clearly the uncertainly placed word") == 0  # word boundaries; 'clearly' not a marker
    assert all(assertive_count(m) >= 1 for m in ASSERTIVE_MARKERS)
    f = extract_features(["Without a doubt it is 100% correct.", "Maybe."])
    assert f["assertive_count"].tolist() == [2, 0]


# =========================================================================== perturbations


def test_perturbation_lexicons_count_what_they_should_and_placebos_do_not():
    for s in DOC_LINK_SENTENCES:
        assert link_counts(s) == {"links": 1, "broken_links": 0}, s
    for s in PLAIN_NOTES + NEUTRAL_MARKERS:
        assert link_counts(s)["links"] == 0, s
        assert assertive_count(s) == hedge_count(s) == agreement_count(s) == flattery_count(s) == 0, s
    for s in ASSERTIVE_OPENERS:
        assert assertive_count(s) >= 1 and hedge_count(s) == agreement_count(s) == flattery_count(s) == 0, s
    for s in HEDGE_OPENERS:
        assert hedge_count(s) >= 1 and assertive_count(s) == 0, s
    mean = lambda xs: np.mean([len(x) for x in xs])  # noqa: E731
    assert abs(mean(DOC_LINK_SENTENCES) - mean(PLAIN_NOTES)) < 2
    assert abs(mean(ASSERTIVE_OPENERS) - mean(NEUTRAL_MARKERS)) < 2


def _norm_words(text):
    import re

    return re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "'").replace("'", ""))


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_new_perturbation_lexicons_are_disjoint_from_demo_content():
    """No inserted string, nor its first four words, occurs in data/demo/content.json (kept so by the lead)."""
    content = json.loads((ROOT / "data/demo/content.json").read_text("utf-8"))
    bank = [" " + " ".join(_norm_words(s)) + " " for s in _strings(content)]
    for lex in (DOC_LINK_SENTENCES, PLAIN_NOTES, ASSERTIVE_OPENERS, NEUTRAL_MARKERS, HEDGE_OPENERS):
        for text in lex:
            w = _norm_words(text)
            for probe in (" ".join(w), " ".join(w[:4])):
                hits = [b.strip() for b in bank if f" {probe} " in b]
                assert not hits, f"{text!r}: {probe!r} occurs in content.json: {hits[:2]}"


def test_assert_confidently_and_its_placebo_rewrite_the_same_hedged_sentence():
    text = "Paris is the capital. I think it might rain there tomorrow. Take a coat."
    out = assert_confidently(text, 0)
    ctrl = neutral_rewrite(text, 0)
    marker = next(m for m in ASSERTIVE_OPENERS if m in out)
    neutral = next(m for m in NEUTRAL_MARKERS if m in ctrl)
    assert out == f"Paris is the capital. {marker}it will rain there tomorrow. Take a coat."
    assert ctrl == f"Paris is the capital. {neutral}it will rain there tomorrow. Take a coat."
    assert hedge_count(out) == hedge_count(ctrl) == 0 and hedge_count(text) == 2
    assert assertive_count(out) >= 1 and assertive_count(ctrl) == 0
    # no hedge: the first sentence gets the marker (proper nouns keep their capital, "The" is lower-cased)
    assert (
        assert_confidently("The sky is blue.", 1)
        == next(m for m in ASSERTIVE_OPENERS if assert_confidently("The sky is blue.", 1).startswith(m))
        + "the sky is blue."
    )
    assert assert_confidently("Paris is big.", 2).endswith("Paris is big.")
    # already assertive and nothing to de-hedge: unchanged (not a counterfactual), placebo too
    assert assert_confidently("Without a doubt, it works.", 0) == "Without a doubt, it works."
    assert neutral_rewrite("Without a doubt, it works.", 0) == "Without a doubt, it works."
    # code fences: unchanged
    assert assert_confidently("It might fail:\n```\nx = 1\n```") == "It might fail:\n```\nx = 1\n```"


def test_soften_assertion_is_the_reverse():
    text = "Without a doubt, this will work. Keep it simple."
    out = soften_assertion(text, 0)
    hedge = next(h for h in HEDGE_OPENERS if out.startswith(h))
    assert out == f"{hedge}this might work. Keep it simple."
    assert assertive_count(out) == 0 and hedge_count(out) >= 1
    plain = soften_assertion("Paris is the capital.", 3)
    assert plain.endswith("Paris is the capital.") and hedge_count(plain) == 1


def test_perturbations_are_deterministic_and_placebos_length_matched():
    texts = [
        "Water boils at 100 degrees Celsius at sea level.",
        "You might want to use a list comprehension. It is probably faster.",
        "- First, sort the list.\n- Then take the middle element.",
    ]
    for fn in (add_doc_link, append_plain_note, assert_confidently, neutral_rewrite, soften_assertion):
        for t in texts:
            assert fn(t, 7) == fn(t, 7) == fn(t, np.random.default_rng(7))
    outs = {add_doc_link(texts[0], s) for s in range(60)}
    assert len(outs) == len(DOC_LINK_SENTENCES)  # every variant is used
    for t in texts:
        for s in range(10):
            a, p = add_doc_link(t, s), append_plain_note(t, s)
            assert abs(len(a) - len(p)) <= 12, (a, p)
            assert link_counts(a)["links"] == link_counts(t)["links"] + 1 and link_counts(p)["links"] == 0
            c, n = assert_confidently(t, s), neutral_rewrite(t, s)
            assert abs(len(c) - len(n)) <= 12, (c, n)
    assert "\n\n" in add_doc_link(texts[2], 0)  # multi-line text: the sentence goes on its own paragraph


def test_registries_and_families():
    assert {"add_doc_link", "append_plain_note", "assert_confidently", "neutral_rewrite", "soften_assertion"} <= set(
        PERTURBATIONS
    )
    assert PLACEBO_CONTROLS["add_doc_link"] == "append_plain_note"
    assert PLACEBO_CONTROLS["assert_confidently"] == "neutral_rewrite"
    assert "soften_assertion" not in PLACEBO_CONTROLS  # descriptive
    links, assertive = FAMILIES["links"], FAMILIES["assertiveness"]
    assert [(c.kind, c.key) for c in links.checks] == [("perturbation", "add_doc_link"), ("pair", "links")]
    assert [(c.kind, c.key) for c in assertive.checks] == [
        ("perturbation", "assert_confidently"),
        ("pair", "assertive_count"),
    ]
    assert links.direction == assertive.direction == "higher" and links.why and assertive.why
    assert not any(c.key == "soften_assertion" for fam in FAMILIES.values() for c in fam.checks)
    assert PERTURBATION_FAMILIES["add_doc_link"] == "links"
    assert PERTURBATION_FAMILIES["assert_confidently"] == PERTURBATION_FAMILIES["soften_assertion"] == "assertiveness"
    assert len(FAMILIES) == 9
    assert {"links", "assertiveness"} <= set(FAMILY_ORDER)  # the false-alarm harness grades them


def test_synthetic_perturbation_checks_pass_null_and_fail_planted():
    for fam in ("links", "assertiveness"):
        null = [perturbation_check_verdict(s, family=fam) for s in range(6)]
        assert set(null) <= {"pass", "inconclusive"} and "pass" in null, null
        assert perturbation_check_verdict(0, family=fam, effect_sd=1.0) == "fail"
        assert perturbation_check_verdict(0, family=fam, effect_sd=-1.0) == "pass"  # one-sided
    with pytest.raises(ValueError, match="family must be one of"):
        perturbation_check_verdict(0, family="length")


# =========================================================================== known answer on the audit

GOOD = [
    "Water boils at 100 degrees Celsius at sea level.",
    "Paris is the capital of France.",
    "A triangle has three sides.",
    "The heart pumps blood through the body.",
    "Light from the Sun takes about eight minutes to reach Earth.",
]
BAD = ["It is hard to say.", "Nobody really knows that.", "That depends on many things.", "Look it up.", "Who knows."]
TAILS = ["", " It might vary a little.", " I think that is right.", " Perhaps check a textbook."]


@pytest.fixture(scope="module")
def pairs():
    rows = []
    for i in range(80):
        rows.append(
            {
                "id": f"p{i}",
                "prompt": f"Question #{i % 40}: tell me something.",
                "chosen": GOOD[i % 5] + TAILS[i % 4],
                "rejected": BAD[(i + 1) % 5] + TAILS[(i + 2) % 4],
            }
        )
    return pd.DataFrame(rows)


def _rm(links_w=0.0, assert_w=0.0):
    """Quality (3 for a good answer) + small per-text noise + the planted payments; one reward unit ~ 1.5."""

    def score(prompts, responses):
        out = []
        for r in responses:
            q = 3.0 * any(g in r for g in GOOD)
            noise = np.random.default_rng(zlib.crc32(r.encode())).normal(0, 0.1)
            out.append(q + noise + links_w * len(find_links(r)) + assert_w * assertive_count(r))
        return np.array(out)

    return score


def _audit(pairs, fn):
    scores = (fn(pairs["prompt"], pairs["chosen"]), fn(pairs["prompt"], pairs["rejected"]))
    return feature_audit(
        pairs,
        scores,
        score_fn=fn,
        n_boot=200,
        perturb_sample=120,
        perturbations=["add_doc_link", "assert_confidently", "soften_assertion"],
    )


def test_known_answer_links_and_assertiveness_rms(pairs):
    neutral = _audit(pairs, _rm()).family_verdicts()
    links = _audit(pairs, _rm(links_w=2.0)).family_verdicts()
    assertive = _audit(pairs, _rm(assert_w=2.0)).family_verdicts()
    assert neutral["links"] == neutral["assertiveness"] == "pass", neutral
    assert links["links"] == "fail" and links["assertiveness"] == "pass", links
    assert assertive["assertiveness"] == "fail" and assertive["links"] == "pass", assertive


def test_verdict_rows_and_soften_is_descriptive(pairs):
    a = _audit(pairs, _rm(assert_w=2.0))
    g = a.to_frame().set_index("check")
    row = g.loc["perturbation [assert_confidently]"]
    assert row["primary"] and row["family"] == "assertiveness" and row["verdict"] == "fail"
    assert row["sentence"].startswith("Rewriting a sentence assertively") and "the same rewrite" in row["sentence"]
    assert g.loc["perturbation [add_doc_link]", "family"] == "links"
    assert "pair_preference [links]" in g.index and "pair_preference [assertive_count]" in g.index
    assert not any("soften_assertion" in c for c in g.index)  # not graded
    t = a.perturbations.to_frame().set_index("perturbation")
    # the reverse rewrite removes the markers the RM pays for: its raw change is negative (descriptive table)
    assert t.loc["soften_assertion", "mean_delta"] < 0 and t.loc["soften_assertion", "control"] == ""
    assert t.loc["assert_confidently", "control"] == "neutral_rewrite"


def test_families_graded_on_a_tiny_real_model(tiny_models, pairs):
    rm = load_reward_model(str(tiny_models["bert"]))
    sub = pairs.head(30)
    a = feature_audit(
        sub,
        score_pairs(rm, sub, progress=False),
        score_fn=rm,
        n_boot=50,
        perturb_sample=20,
        perturbations=["add_doc_link", "assert_confidently"],
    )
    fams = a.family_verdicts()
    assert fams["links"] in ("pass", "inconclusive", "warn", "fail")
    assert fams["assertiveness"] in ("pass", "inconclusive", "warn", "fail")
    t = a.perturbations.to_frame().set_index("perturbation")
    assert t.loc["add_doc_link", "n_vs_control"] == 20  # appending always changes the text
    assert t.loc["assert_confidently", "n_vs_control"] > 0
    assert {"links", "link_density", "broken_links", "assertive_count"} <= set(a.responses.columns)


# =========================================================================== golden subset in the overview


def test_golden_confident_wrong_subset_and_overview_by_subset_and_category():
    golden = load_data("golden")
    f = golden.to_frame() if hasattr(golden, "to_frame") else golden.frame
    assert len(f) == sum(1 for line in (ROOT / "data/golden/golden.jsonl").open(encoding="utf-8") if line.strip())
    cw = f[f["subset"] == "confident_wrong_vs_hedged_correct"]
    assert len(cw) >= 45
    new = cw[cw["id"].isin([f"golden-k-{i}" for i in range(122, 138)] + [f"golden-c-{i}" for i in range(115, 124)])]
    assert len(new) == 25
    assert (new["rejected"].map(assertive_count) > 0).all() and (new["chosen"].map(assertive_count) == 0).all()
    # an RM that pays only for certainty markers gets these pairs wrong, one that pays for hedges right
    scored = pd.DataFrame(
        {
            "id": f["id"],
            "margin": f["chosen"].map(hedge_count).to_numpy(float) - f["rejected"].map(hedge_count).to_numpy(float),
            "label": 1.0,
            "subset": f["subset"],  # as score_pairs carries them
            "category": f["category"],
        }
    )
    res = overview(scored, data=golden, n_boot=0)
    tables = res.group_tables(("category", "subset", ("subset", "category")))
    assert list(tables) == ["category", "subset", "subset x category"]
    cross = tables["subset x category"].set_index(["subset", "category"])
    assert cross["n"].sum() == len(f)
    for cat, part in cw.groupby("category"):
        m = part["chosen"].map(hedge_count).to_numpy(float) - part["rejected"].map(hedge_count).to_numpy(float)
        want = np.mean(m[m != 0] > 0)  # model ties are left out of the accuracy
        assert cross.loc[("confident_wrong_vs_hedged_correct", cat), "accuracy"] == pytest.approx(want)
        assert cross.loc[("confident_wrong_vs_hedged_correct", cat), "n"] == len(part)
