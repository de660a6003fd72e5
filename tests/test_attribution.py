"""Tests of workbench.audits.attribution (IG, occlusion, SHAP, faithfulness, aggregation, rendering, the audit).

Tiny random transformers (the ``tiny_models`` fixture) check the mechanics; the
demo RMs appear only in the known-answer test (module-scoped fixture).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from workbench.audits.attribution import (
    AGREEMENT_WORDS,
    TOKEN_PATTERN,
    AttributionAudit,
    DeletionCurve,
    Explanation,
    IntegratedGradientsExplainer,
    OcclusionExplainer,
    ShapExplainer,
    aggregate_attributions,
    attribution_audit,
    browser_html,
    compare_methods,
    compare_with_triggers,
    delete_words,
    deletion_curve,
    deletion_summary,
    explanation_browser,
    faithfulness_effect,
    make_explainer,
    margin_explanation,
    normalize_words,
    rank_agreement,
    response_words,
    summary_frame,
    top_word_hit_rate,
)
from workbench.models import CallableRM, ValueHeadConfig, ValueHeadRM, load_reward_model, score_texts
from workbench.paths import data_dir

PROMPT = "What is the capital of France?"
RESPONSE = "The capital of France is Paris. You're absolutely right!"
OTHER = "I am not sure, you could probably search online for that."
ARCHS = ("bert", "deberta", "gpt2", "llama")


def _scores(rm, prompts, responses):
    return score_texts(rm, prompts, responses, cache=None, progress=False).scores


@pytest.fixture(scope="module")
def rms(tiny_models):
    return {name: load_reward_model(str(tiny_models[name])) for name in ARCHS}


@pytest.fixture(scope="module")
def value_head_rms(tiny_models):
    """Value-head RMs (BERT backbone) with each pooling, built in memory from the tiny BERT."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    out = {}
    for pooling in ("mean", "cls", "last"):
        torch.manual_seed(1)
        backbone = AutoModel.from_pretrained(tiny_models["bert"])
        head = torch.nn.Linear(backbone.config.hidden_size, 1)
        with torch.no_grad():
            head.weight.mul_(30.0)
        tok = AutoTokenizer.from_pretrained(tiny_models["bert"])
        out[pooling] = ValueHeadRM(
            backbone, tok, head, ValueHeadConfig(pooling=pooling, max_length=128), name=f"vh-{pooling}"
        )
    return out


# ---------------------------------------------------------------------------
# Words and deletion
# ---------------------------------------------------------------------------


def test_response_words_and_delete_words():
    text = "  Hello,  big\nworld!\t"
    words, spans = response_words(text)
    assert words == ["Hello,", "big", "world!"]
    assert [text[a:b] for a, b in spans] == words
    assert delete_words(text, spans, [1]) == "  Hello,  world!\t"
    assert delete_words(text, spans, [0]) == "  big\nworld!\t"
    assert delete_words(text, spans, [2]) == "  Hello,  big\t"
    assert delete_words(text, spans, [0, 1, 2]) == ""
    assert delete_words(text, spans, []) == text
    assert delete_words(text, spans, [1], replacement="[MASK]") == "  Hello,  [MASK]\nworld!\t"
    with pytest.raises(IndexError):
        delete_words(text, spans, [3])


def test_normalize_words_matches_trigger_mining():
    from workbench.audits.features import triggers as trigger_mining

    assert TOKEN_PATTERN == trigger_mining.TOKEN_PATTERN
    assert normalize_words("You\u2019re") == ["you're"]
    assert normalize_words("right!") == ["right"]
    assert normalize_words("e.g.") == ["e", "g"]
    assert normalize_words("\u2014") == []


# ---------------------------------------------------------------------------
# Integrated gradients on every architecture
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_reproduces_scores(rms, arch):
    rm = rms[arch]
    ig = IntegratedGradientsExplainer(rm, n_steps=4)
    prompts, responses = [PROMPT, "Hi", "And Spain?"], [RESPONSE, OTHER, "  Madrid.\n"]
    histories = [None, None, [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": "Paris."}]]
    expected = score_texts(rm, prompts, responses, histories, cache=None, progress=False).scores
    got = [ig.score(p, r, h) for p, r, h in zip(prompts, responses, histories)]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # with a history, only the final response's words are attributed
    e = ig.attribute(prompts[2], responses[2], histories[2])
    assert e.words == ["Madrid."] and e.score == pytest.approx(expected[2], abs=1e-4)
    assert "".join(e.tokens[i] for i in np.flatnonzero(e.token_word == 0)).strip() == "Madrid."


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_forward_reproduces_value_head_scores(value_head_rms, pooling):
    rm = value_head_rms[pooling]
    ig = IntegratedGradientsExplainer(rm, n_steps=4)
    expected = _scores(rm, [PROMPT, PROMPT], [RESPONSE, OTHER])
    np.testing.assert_allclose([ig.score(PROMPT, RESPONSE), ig.score(PROMPT, OTHER)], expected, atol=1e-4)
    e = ig.attribute(PROMPT, RESPONSE)
    assert e.score == pytest.approx(expected[0], abs=1e-4)


def test_forward_reproduces_truncated_scores(tiny_models):
    rm = load_reward_model(str(tiny_models["bert"]), max_length=16)
    ig = IntegratedGradientsExplainer(rm, n_steps=8)
    long_response = RESPONSE + " " + OTHER
    assert rm.encode(rm.format(PROMPT, long_response))[1]  # really truncated
    e = ig.attribute(PROMPT, long_response)
    assert e.score == pytest.approx(_scores(rm, [PROMPT], [long_response])[0], abs=1e-4)
    assert e.info["truncated"] and len(e.tokens) == 16
    # left truncation drops the prompt first: the last response words keep their tokens
    assert e.word_attributions[-1] != 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_ig_completeness(rms, arch):
    rm = rms[arch]
    e = IntegratedGradientsExplainer(rm, n_steps=64, internal_batch_size=16).attribute(PROMPT, RESPONSE)
    gap = e.score - e.baseline_score
    assert abs(e.total_attribution - gap) <= 1e-3 * max(1.0, abs(gap))
    assert abs(e.convergence_delta) <= 1e-3 * max(1.0, abs(gap))
    # a coarse integration has a larger completeness gap
    coarse = IntegratedGradientsExplainer(rm, n_steps=2, internal_batch_size=16).attribute(PROMPT, RESPONSE)
    assert abs(coarse.convergence_delta) >= abs(e.convergence_delta)
    # the attribution is not trivially zero
    assert np.abs(e.word_attributions).max() > 0


def test_ig_matches_captum_directly(rms):
    """Attributions and delta equal a direct LayerIntegratedGradients call with Captum's own delta."""
    import torch
    from captum.attr import LayerIntegratedGradients

    rm = rms["bert"]
    ig = IntegratedGradientsExplainer(rm, n_steps=8, internal_batch_size=4)
    e = ig.attribute(PROMPT, RESPONSE)
    ids = torch.tensor([rm.encode(rm.format(PROMPT, RESPONSE))[0]])
    base = torch.tensor([ig.baseline_ids(ids[0].tolist())])
    extra = (torch.ones_like(ids), torch.zeros(1, dtype=torch.long))
    attr, delta = LayerIntegratedGradients(ig._forward, ig.layer).attribute(
        ids, baselines=base, additional_forward_args=extra, n_steps=8, return_convergence_delta=True
    )
    np.testing.assert_allclose(e.token_attributions, attr[0].sum(-1).detach().numpy(), atol=1e-6)
    assert e.convergence_delta == pytest.approx(float(delta[0]), abs=1e-5)


def test_ig_baseline_score_is_the_model_at_the_baseline(rms):
    """For an encoder (CLS pooling) the baseline reward is the RM's own score of the baseline ids."""
    import torch

    rm = rms["bert"]
    for baseline in ("pad", "mask"):
        ig = IntegratedGradientsExplainer(rm, n_steps=16, baseline=baseline)
        e = ig.attribute(PROMPT, RESPONSE)
        ids = rm.encode(rm.format(PROMPT, RESPONSE))[0]
        base = ig.baseline_ids(ids)
        tok = rm.tokenizer
        fill = tok.pad_token_id if baseline == "pad" else tok.mask_token_id
        assert base[0] == tok.cls_token_id and base[-1] == tok.sep_token_id  # special tokens kept
        assert all(b == fill for b in base[1:-1])
        with torch.inference_mode():
            expected = float(rm.forward_ids([base])[0])
        assert e.baseline_score == pytest.approx(expected, abs=1e-4)


def test_ig_zero_baseline_is_zero_embeddings(rms):
    """Independent check with inputs_embeds: zero word embeddings except the special tokens."""
    import torch

    rm = rms["gpt2"]
    ig = IntegratedGradientsExplainer(rm, n_steps=32, baseline="zeros")
    e = ig.attribute(PROMPT, RESPONSE)
    ids = torch.tensor([rm.encode(rm.format(PROMPT, RESPONSE))[0]])
    special = torch.tensor([[int(i) in set(rm.tokenizer.all_special_ids) for i in ids[0]]])
    with torch.no_grad():
        emb = rm.model.get_input_embeddings()(ids) * special.unsqueeze(-1)
        out = rm.model(inputs_embeds=emb, attention_mask=torch.ones_like(ids)).logits[0, 0]
    assert e.baseline_score == pytest.approx(float(out), abs=1e-4)
    assert e.total_attribution == pytest.approx(e.score - e.baseline_score, abs=1e-2)


def test_ig_keep_context_attributes_only_the_response(rms):
    e = IntegratedGradientsExplainer(rms["llama"], n_steps=64, keep_context=True).attribute(PROMPT, RESPONSE)
    ctx = e.token_word < 0
    assert np.allclose(e.token_attributions[ctx], 0.0, atol=1e-7)
    assert e.response_attribution == pytest.approx(e.score - e.baseline_score, abs=1e-3 * max(1, abs(e.score)))


def test_ig_internal_batch_size_does_not_change_attributions(rms):
    a = IntegratedGradientsExplainer(rms["bert"], n_steps=16, internal_batch_size=1).attribute(PROMPT, RESPONSE)
    b = IntegratedGradientsExplainer(rms["bert"], n_steps=16, internal_batch_size=None).attribute(PROMPT, RESPONSE)
    np.testing.assert_allclose(a.token_attributions, b.token_attributions, atol=1e-6)


def test_ig_margin_is_chosen_minus_rejected(rms):
    rm = rms["gpt2"]
    ig = IntegratedGradientsExplainer(rm, n_steps=32)
    m = ig.attribute_pair(PROMPT, RESPONSE, OTHER, example_id="p1")
    c, r = ig.attribute(PROMPT, RESPONSE), ig.attribute(PROMPT, OTHER)
    np.testing.assert_allclose(m.word_attributions, np.concatenate([c.word_attributions, -r.word_attributions]))
    sc, sr = _scores(rm, [PROMPT, PROMPT], [RESPONSE, OTHER])
    assert m.target == "margin" and m.example_id == "p1"
    assert m.score == pytest.approx(sc - sr, abs=1e-4)
    assert m.convergence_delta == pytest.approx(c.convergence_delta - r.convergence_delta)
    assert m.total_attribution == pytest.approx(m.score - m.baseline_score, abs=1e-2)
    assert list(m.side) == ["chosen"] * c.n_words + ["rejected"] * r.n_words
    assert m.words == c.words + r.words
    html = m.to_html()
    assert "chosen" in html and "rejected" in html


def test_word_aggregation_of_subword_tokens(rms):
    """WordPiece splits the long words; each word's tokens spell it and their attributions sum to it."""
    rm = rms["bert"]
    response = "Unbelievably, photosynthesis isn't   simple."
    e = IntegratedGradientsExplainer(rm, n_steps=8).attribute("Why?", response)
    assert e.words == ["Unbelievably,", "photosynthesis", "isn't", "simple."]
    for j, word in enumerate(e.words):
        idx = np.flatnonzero(e.token_word == j)
        assert len(idx) >= 2  # every word here is split into several tokens
        assert "".join(e.tokens[i] for i in idx) == word
        assert e.word_attributions[j] == pytest.approx(e.token_attributions[idx].sum())
    # prompt, template and special tokens belong to no word
    assert e.tokens[0] == "[CLS]" and e.token_word[0] == -1
    assert "".join(t for t, w in zip(e.tokens, e.token_word) if w < 0).startswith("[CLS]User:Why?")


def test_ig_byte_level_tokens_map_to_words(rms):
    e = IntegratedGradientsExplainer(rms["llama"], n_steps=8).attribute(PROMPT, RESPONSE)
    for j, word in enumerate(e.words):
        text = "".join(e.tokens[i] for i in np.flatnonzero(e.token_word == j))
        assert text.strip() == word


def test_ig_validation(rms, tiny_models):
    with pytest.raises(ValueError, match="baseline"):
        IntegratedGradientsExplainer(rms["bert"], baseline="random")
    with pytest.raises(ValueError, match="mask token"):
        IntegratedGradientsExplainer(rms["gpt2"], baseline="mask")
    with pytest.raises(ValueError, match="n_steps"):
        IntegratedGradientsExplainer(rms["bert"], n_steps=0)
    with pytest.raises(TypeError, match="OcclusionExplainer"):
        IntegratedGradientsExplainer(CallableRM(lambda p, r: [0.0] * len(r)))
    with pytest.raises(ValueError, match="method"):
        make_explainer("lime", rms["bert"])
    assert isinstance(make_explainer("ig", rms["bert"], n_steps=4), IntegratedGradientsExplainer)


# ---------------------------------------------------------------------------
# Model-agnostic methods on callable RMs with known word effects
# ---------------------------------------------------------------------------

EFFECTS = {"great": 3.0, "right": 2.0, "sure": 1.2, "bad": -1.5, "maybe": -0.6}
ADDITIVE_TEXT = "This is great, right? Maybe it is not bad, sure thing."


def _additive(prompts, responses):
    return [sum(EFFECTS.get(w.strip(".,!?").lower(), 0.0) for w in r.split()) for r in responses]


def _count_great(prompts, responses):
    return [float(sum(w.strip(".,!?").lower() == "great" for w in r.split())) for r in responses]


def _expected_effects(text):
    return np.array([EFFECTS.get(w.strip(".,!?").lower(), 0.0) for w in text.split()])


def test_occlusion_gives_a_known_word_effect():
    rm = CallableRM(_count_great, name="count-great")
    text = "Great answer, truly great. Not bad."
    e = OcclusionExplainer(rm).attribute("Q", text)
    assert e.words == text.split()
    np.testing.assert_array_equal(e.word_attributions, [1, 0, 0, 1, 0, 0])
    assert e.score == 2.0 and e.method == "occlusion"
    assert np.isnan(e.convergence_delta)


def test_shap_recovers_additive_effects_and_agrees_with_occlusion():
    rm = CallableRM(_additive, name="additive")
    s = ShapExplainer(rm, max_evals=200).attribute("Q", ADDITIVE_TEXT)
    o = OcclusionExplainer(rm).attribute("Q", ADDITIVE_TEXT)
    expected = _expected_effects(ADDITIVE_TEXT)
    np.testing.assert_allclose(s.word_attributions, expected, atol=1e-6)
    np.testing.assert_allclose(o.word_attributions, expected, atol=1e-9)
    assert s.baseline_score == pytest.approx(0.0) and s.score == pytest.approx(expected.sum())
    assert abs(s.convergence_delta) < 1e-6
    agreement = rank_agreement(s, o, k=3)
    assert agreement["jaccard_top_k"] == 1.0
    assert agreement["spearman"] > 0.9


def test_shap_handles_short_responses():
    rm = CallableRM(_additive, name="additive")
    one = ShapExplainer(rm).attribute("Q", "great")
    assert one.words == ["great"] and one.word_attributions[0] == pytest.approx(3.0)
    empty = ShapExplainer(rm).attribute("Q", "   ")
    assert empty.n_words == 0 and empty.score == 0.0


def test_compare_methods_summary():
    rm = CallableRM(_additive, name="additive")
    texts = [ADDITIVE_TEXT, "Sure, great idea but maybe bad timing.", "Right, that is great."]
    occ = OcclusionExplainer(rm).attribute_many(["Q"] * 3, texts)
    noisy = []
    rng = np.random.default_rng(0)
    for e in occ:
        noisy.append(
            Explanation(
                "noisy",
                e.words,
                e.word_attributions + rng.normal(0, 0.01, e.n_words),
                e.score,
                e.word_spans,
                e.words,
                e.word_attributions,
                np.arange(e.n_words),
            )
        )
    result = compare_methods(occ, noisy, k=2)
    assert len(result.to_frame()) == 3
    summary = result.summary()
    assert set(summary["measure"]) == {"spearman", "jaccard_top_2"}
    assert summary.set_index("measure").loc["jaccard_top_2", "mean"] == 1.0
    with pytest.raises(ValueError, match="different texts"):
        rank_agreement(occ[0], occ[1])


def test_margin_explanation_with_occlusion():
    rm = CallableRM(_additive, name="additive")
    occ = OcclusionExplainer(rm)
    m = occ.attribute_pair("Q", "great great", "bad idea")
    np.testing.assert_allclose(m.word_attributions, [3.0, 3.0, 1.5, 0.0])
    assert m.score == pytest.approx(6.0 - (-1.5))
    again = margin_explanation(occ.attribute("Q", "great great"), occ.attribute("Q", "bad idea"))
    np.testing.assert_allclose(again.word_attributions, m.word_attributions)
    shap_side = ShapExplainer(rm, max_evals=20).attribute("Q", "bad idea")
    with pytest.raises(ValueError, match="same method"):
        margin_explanation(occ.attribute("Q", "great great"), shap_side)
    with pytest.raises(ValueError, match="single-score"):
        margin_explanation(m, m)


def test_deletion_curve_top_words_beat_random():
    rm = CallableRM(_additive, name="additive")
    e = OcclusionExplainer(rm).attribute("Q", ADDITIVE_TEXT)
    curve = deletion_curve(e, rm, ks=(1, 2, 3, 5), n_random=30, seed=0)
    t = curve.to_frame()
    assert list(t["k"]) == [1, 2, 3, 5]
    # hand-computed: the top-k effects are 3, 2, 1.2, 0, 0 (the words with effect 0 come next)
    np.testing.assert_allclose(t["drop_top"], [3.0, 5.0, 6.2, 6.2])
    assert (t["drop_top"] > t["random_ci_high"]).all()
    assert curve.aopc_top > curve.aopc_random
    summary = deletion_summary([curve, curve])
    aopc = summary.set_index("k").loc["AOPC"]
    assert aopc["drop_top"] == pytest.approx(curve.aopc_top) and aopc["frac_top_gt_random"] == 1.0
    with pytest.raises(ValueError, match="larger"):
        deletion_curve(e, rm, ks=(50,))
    with pytest.raises(ValueError, match="single-score"):
        deletion_curve(OcclusionExplainer(rm).attribute_pair("Q", "great", "bad"), rm)


def test_deletion_curve_random_draws_are_seeded():
    rm = CallableRM(_additive, name="additive")
    e = OcclusionExplainer(rm).attribute("Q", ADDITIVE_TEXT)
    a = deletion_curve(e, rm, n_random=5, seed=3).to_frame()
    b = deletion_curve(e, rm, n_random=5, seed=3).to_frame()
    pd.testing.assert_frame_equal(a, b)
    assert isinstance(deletion_curve(e, rm, n_random=5), DeletionCurve)


# ---------------------------------------------------------------------------
# Rendering and widgets
# ---------------------------------------------------------------------------

EVIL = 'Sure <script>alert(1)</script> & "quotes" <img src=x onerror=alert(2)>'


def test_heatmap_escapes_untrusted_text(rms):
    rm = CallableRM(_additive, name="additive")
    occ = OcclusionExplainer(rm).attribute("<b>prompt</b>", EVIL)
    ig = IntegratedGradientsExplainer(rms["bert"], n_steps=4).attribute("<b>prompt</b>", EVIL)
    margin = OcclusionExplainer(rm).attribute_pair("<i>p</i>", EVIL, "<script>x</script>")
    for html in (
        occ.to_html(),
        ig.to_html(),
        ig.to_html(level="token"),
        margin.to_html(),
        browser_html({"occlusion": [occ]}, 0, "occlusion"),
    ):
        assert "<script" not in html.lower()
        assert "<img" not in html and "<b>prompt" not in html and "<i>" not in html
        assert "&lt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in occ.to_html()
    # every word of the response is a coloured span
    assert occ.to_html().count('class="wb-attr-unit"') == occ.n_words


def test_heatmap_colours_follow_the_sign():
    rm = CallableRM(_additive, name="additive")
    html = OcclusionExplainer(rm).attribute("Q", "great bad").to_html()
    assert re.search(r"rgba\(220,38,38,0\.850\)[^>]*>great<", html)
    assert re.search(r"rgba\(37,99,235,0\.425\)[^>]*>bad<", html)


def test_plot_and_frames():
    import matplotlib

    matplotlib.use("Agg")
    rm = CallableRM(_additive, name="additive")
    e = OcclusionExplainer(rm).attribute("Q", ADDITIVE_TEXT + " $5 $6")
    ax = e.plot(k=4)
    assert len(ax.patches) == 4
    top = e.top_words(2)
    assert list(top["word"]) == ["great,", "right?"]
    frame = summary_frame([e])
    assert frame.loc[0, "method"] == "occlusion" and frame.loc[0, "n_words"] == e.n_words


def test_explanation_browser_updates():
    rm = CallableRM(_additive, name="additive")
    texts = ["great <script>", "bad idea"]
    occ = OcclusionExplainer(rm).attribute_many(["Q", "Q"], texts, ids=["a", "b"])
    shp = ShapExplainer(rm, max_evals=20).attribute_many(["Q", "Q"], texts, ids=["a", "b"])
    box = explanation_browser({"occlusion": occ, "shap": shp})
    assert "great" in box.output.value and "<script>" not in box.output.value
    box.example.value = 1
    assert "idea" in box.output.value
    box.method.value = "shap"
    assert "<b>shap</b>" in box.output.value
    with pytest.raises(ValueError, match="same"):
        explanation_browser({"occlusion": occ, "shap": shp[:1]})


# ---------------------------------------------------------------------------
# Dataset level
# ---------------------------------------------------------------------------


def _hand_explanation(words, values, eid):
    text = " ".join(words)
    w, spans = response_words(text)
    return Explanation("hand", w, values, float(np.sum(values)), spans, w, values, np.arange(len(w)), example_id=eid)


def test_aggregate_attributions_hand_example():
    exps = [
        _hand_explanation(["You're", "right!", "Paris."], [0.5, 2.0, 1.0], 0),
        _hand_explanation(["Right,", "e.g.", "Paris"], [1.0, 0.4, -1.0], 1),
        _hand_explanation(["you're", "right", "again"], [0.1, 3.0, 0.0], 2),
    ]
    agg = aggregate_attributions(exps, ngram_range=(1, 2), min_count=2).set_index("ngram")
    assert agg.loc["right", "count"] == 3 and agg.loc["right", "n_texts"] == 3
    assert agg.loc["right", "mean_attribution"] == pytest.approx((2.0 + 1.0 + 3.0) / 3)
    assert agg.loc["paris", "mean_attribution"] == pytest.approx(0.0)
    assert agg.loc["you're right", "mean_attribution"] == pytest.approx((2.5 + 3.1) / 2)
    assert agg.loc["you're right", "n_words"] == 2
    # "e.g." is split into two units sharing its attribution; they occur once, below min_count
    assert "e" not in agg.index
    one = aggregate_attributions(exps, ngram_range=(1, 1), min_count=1).set_index("ngram")
    assert one.loc["e", "mean_attribution"] == pytest.approx(0.2)
    assert agg.loc["right", "mean_share"] == pytest.approx(np.mean([2.0 / 3.5, 1.0 / 2.4, 3.0 / 3.1]))
    assert list(aggregate_attributions(exps, min_count=2)["rank"]) == list(range(1, len(agg) + 1))
    assert aggregate_attributions(exps, min_count=2).iloc[0]["ngram"] == "you're right"
    with pytest.raises(ValueError, match="mix methods"):
        aggregate_attributions(exps + [OcclusionExplainer(CallableRM(_additive)).attribute("Q", "great")])


def test_top_word_hit_rate():
    exps = [
        _hand_explanation(["You're", "right!", "Paris."], [0.5, 2.0, 1.0], 0),
        _hand_explanation(["Paris", "is", "big", "right"], [3.0, 2.0, 1.0, -1.0], 1),
    ]
    assert top_word_hit_rate(exps, AGREEMENT_WORDS, k=1) == 0.5
    assert top_word_hit_rate(exps, AGREEMENT_WORDS, k=4) == 1.0
    assert top_word_hit_rate(exps, AGREEMENT_WORDS, k=3, by="value") == 0.5
    assert top_word_hit_rate(exps, AGREEMENT_WORDS, k=3, by="abs") == 0.5


def test_compare_with_triggers_from_mined_triggers():
    from workbench.audits.features.triggers import mine_triggers

    rng = np.random.default_rng(0)
    fillers = ["the sky is blue", "water is wet", "cats like naps", "maps show roads", "rain falls down"]
    texts, rewards = [], []
    for i in range(60):
        trig = i % 2 == 0
        texts.append(("absolutely right, " if trig else "well, ") + fillers[i % 5])
        rewards.append(2.0 * trig + rng.normal(0, 0.3))
    result = mine_triggers(texts, rewards, ngram_range=(1, 2), min_count=5, top_k=5, n_boot=50)
    rm = CallableRM(lambda p, r: [2.0 * ("absolutely right" in x) for x in r], name="trigger-rm")
    exps = OcclusionExplainer(rm).attribute_many(["Q"] * 20, texts[:20])
    agg = aggregate_attributions(exps, ngram_range=(1, 2), min_count=3)
    cmp_ = compare_with_triggers(agg, result, k=3)
    assert set(cmp_.shared) & {"absolutely", "right", "absolutely right"}
    assert cmp_.overlap > 0
    table = cmp_.to_frame().set_index("ngram")
    assert table.loc["absolutely right", "cohens_d"] > 1
    assert np.isfinite(table.loc["absolutely right", "trigger_rank"])
    assert np.isfinite(cmp_.spearman) and cmp_.spearman > 0
    trig = cmp_.triggers.set_index("ngram")
    top_trigger = result.to_frame()["ngram"].iloc[0]
    assert trig.loc[top_trigger, "mean_attribution"] > 0
    # a plain DataFrame with an ngram column works too
    plain = compare_with_triggers(agg, pd.DataFrame({"ngram": ["right", "cats"], "cohens_d": [2.0, -0.5]}), k=2)
    assert plain.to_frame().set_index("ngram").loc["right", "trigger_rank"] == 1
    with pytest.raises(ValueError, match="ngram"):
        compare_with_triggers(agg, pd.DataFrame({"x": [1]}))


# ---------------------------------------------------------------------------
# Known answer on the demo RMs
# ---------------------------------------------------------------------------

N_KNOWN = 12


@pytest.fixture(scope="module")
def agree_opener_responses():
    rows = []
    with open(data_dir() / "demo" / "eval.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            for side in ("chosen", "rejected"):
                if rec["attrs"][side]["a"] == 1:
                    rows.append((rec["prompt"], rec[side]))
    assert len(rows) >= N_KNOWN
    return rows[:N_KNOWN]


@pytest.fixture(scope="module")
def demo_explanations(agree_opener_responses):
    out = {}
    prompts = [p for p, _ in agree_opener_responses]
    responses = [r for _, r in agree_opener_responses]
    for name in ("demo-biased", "demo-clean"):
        ig = IntegratedGradientsExplainer(load_reward_model(name), n_steps=16, internal_batch_size=16)
        out[name] = ig.attribute_many(prompts, responses)
    return out


def test_known_answer_agreement_words_rank_higher_on_biased_rm(demo_explanations):
    biased = top_word_hit_rate(demo_explanations["demo-biased"], AGREEMENT_WORDS, k=5)
    clean = top_word_hit_rate(demo_explanations["demo-clean"], AGREEMENT_WORDS, k=5)
    rel = [
        abs(e.convergence_delta) / max(1.0, abs(e.score - e.baseline_score))
        for exps in demo_explanations.values()
        for e in exps
    ]
    print(
        f"known answer: agreement word in top 5: demo-biased {biased:.3f}, demo-clean {clean:.3f}; "
        f"relative |delta| median {np.median(rel):.3f}, max {np.max(rel):.3f}"
    )
    assert biased > clean
    assert np.median(rel) < 0.1  # IG with 16 steps is close to complete on the real MiniLM backbone


# ---------------------------------------------------------------------------
# The one-call audit (notebook 03)
# ---------------------------------------------------------------------------


def _audit_pairs(n, seed):
    rng = np.random.default_rng(seed)
    vocab = ["great", "right", "sure", "bad", "maybe", "the", "answer", "is", "here", "cats", "dogs", "fine"]
    rows = []
    for i in range(n):
        chosen = " ".join(rng.choice(vocab, size=7))
        rejected = " ".join(rng.choice(vocab, size=6))
        rows.append(
            {
                "id": f"p{i}",
                "prompt": f"Question {i}?",
                "chosen": ("You're right! " if i % 2 == 0 else "") + chosen,
                "rejected": rejected,
                "history": None,
                "attrs": {"chosen": {"a": int(i % 2 == 0)}, "rejected": {"a": 0}},
            }
        )
    return pd.DataFrame(rows)


def test_attribution_audit_matches_the_step_by_step_computation():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from workbench.audits.features.triggers import mine_triggers

    rm = CallableRM(_additive, name="additive")
    pairs, mined = _audit_pairs(6, 0), _audit_pairs(40, 1)
    audit = attribution_audit(
        rm,
        pairs,
        methods="ig,occlusion,shap",
        shap_max_evals=40,
        n_random=4,
        faithfulness_examples=3,
        top_k=5,
        trigger_data=mined,
    )
    assert isinstance(audit, AttributionAudit) and audit.section == "attribution"
    assert audit.methods == ["occlusion", "shap"] and any("IG" in n for n in audit.notes)
    verdicts = audit.verdicts()
    assert [v.check for v in verdicts] == [
        "deletion faithfulness vs random [occlusion]",
        "deletion faithfulness vs random [shap]",
    ]
    assert [v.primary for v in verdicts] == [True, False] and {v.family for v in verdicts} == {"attribution"}

    # the same steps by hand, as notebook 03 ran them before the audit existed
    prompts, responses = list(pairs["prompt"]), list(pairs["chosen"])
    ids = [f"{i}/chosen" for i in pairs["id"]]
    occ = OcclusionExplainer(rm).attribute_many(prompts, responses, ids=ids)
    shp = ShapExplainer(rm, max_evals=40).attribute_many(prompts, responses, ids=ids)
    for mine, theirs in ((audit.explanations["occlusion"], occ), (audit.explanations["shap"], shp)):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a.word_attributions, b.word_attributions)
    pd.testing.assert_frame_equal(audit.agreement_frame(), compare_methods(occ, shp, k=5, seed=0).summary())
    curves = [deletion_curve(e, rm, n_random=4, seed=0) for exps in (occ, shp) for e in exps[:3] if e.n_words >= 5]
    pd.testing.assert_frame_equal(audit.faithfulness, deletion_summary(curves, seed=0))
    agg = aggregate_attributions(occ, ngram_range=(1, 2), min_count=3)
    pd.testing.assert_frame_equal(audit.phrases, agg)
    texts = list(mined["chosen"]) + list(mined["rejected"])
    rewards = np.concatenate([_additive(None, mined["chosen"]), _additive(None, mined["rejected"])])
    triggers = mine_triggers(texts, rewards, ngram_range=(1, 2), min_count=5, top_k=30, n_boot=200, seed=0)
    assert audit.comparison.summary() == compare_with_triggers(agg, triggers, k=5).summary()
    margin = OcclusionExplainer(rm).attribute_pair(prompts[0], pairs["chosen"][0], pairs["rejected"][0])
    np.testing.assert_array_equal(audit.margin.word_attributions, margin.word_attributions)
    agree = np.array([i % 2 == 0 for i in range(6)])
    known = audit.known_answer.set_index(["method", "responses"])["agreement word in top 5"]
    assert known[("occlusion", "agree opener")] == top_word_hit_rate(
        [e for e, s in zip(occ, agree) if s], AGREEMENT_WORDS, k=5
    )

    table = audit.to_frame()
    assert list(table["method"]) == ["occlusion", "shap"] and "mean |delta|" in table.columns
    summary = audit.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["n_responses"] == 6 and summary["methods"] == "occlusion,shap"
    matrix = audit.agreement_matrix()
    assert matrix.loc["occlusion", "shap"] == matrix.loc["shap", "occlusion"]
    for fig in (audit.plot(), audit.plot_agreement(), audit.plot_example(0), audit.plot_triggers()):
        assert isinstance(fig, Figure)
    _, ax = matplotlib.pyplot.subplots()
    assert audit.plot(ax=ax) is ax.figure
    assert "occlusion" in audit.browser().output.value


def test_attribution_audit_both_sides_and_validation():
    rm = CallableRM(_additive, name="additive")
    pairs = _audit_pairs(3, 2).drop(columns=["attrs"])
    audit = attribution_audit(rm, pairs, sides="both", methods=["occlusion"], n_random=2, faithfulness_examples=1)
    assert audit.n_responses == 6 and audit.agreements == [] and audit.known_answer is None
    assert audit.margin.score == pytest.approx(
        audit.explanations["occlusion"][0].score - audit.explanations["occlusion"][3].score
    )
    assert audit.comparison is None
    with pytest.raises(ValueError, match="sides"):
        attribution_audit(rm, pairs, sides="rejected")
    with pytest.raises(ValueError, match="no attribution method"):
        attribution_audit(rm, pairs, methods="ig")


# ---------------------------------------------------------------------------
# The graded check: deletion faithfulness against random deletion
# ---------------------------------------------------------------------------


def _curve(score, top, random, method="m"):
    return DeletionCurve(pd.DataFrame(), score, top, random, 1, method)


def test_faithfulness_effect_by_hand_and_clustered_interval():
    rng = np.random.default_rng(4)
    n, per = 24, 2
    scores, tops, rnds = rng.normal(size=n) * 2, rng.normal(1.0, 1.0, n), rng.normal(0.2, 0.3, n)
    clusters = [f"prompt {i // per}" for i in range(n)]
    out = faithfulness_effect([_curve(*v) for v in zip(scores, tops, rnds)], clusters, n_boot=300, seed=9)
    diff = tops - rnds
    assert out["estimate"] == pytest.approx(diff.mean() / scores.std(ddof=1))
    assert out["difference"] == pytest.approx(diff.mean()) and out["reward_sd"] == pytest.approx(scores.std(ddof=1))
    assert (out["n"], out["n_clusters"]) == (n, n // per)
    # independent computation: draw prompts with numpy, recompute the mean and the SD on the drawn responses
    codes = np.repeat(np.arange(n // per), per)
    boots = []
    for draw in np.random.default_rng(9).integers(0, n // per, size=(300, n // per)):
        rows = np.concatenate([np.flatnonzero(codes == c) for c in draw])
        boots.append(diff[rows].mean() / scores[rows].std(ddof=1))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    assert out["ci_low"] == pytest.approx(lo, abs=1e-9) and out["ci_high"] == pytest.approx(hi, abs=1e-9)
    # one response, or constant rewards: undefined
    assert np.isnan(faithfulness_effect([_curve(1.0, 2.0, 0.0)])["estimate"])
    assert np.isnan(faithfulness_effect([_curve(1.0, 2.0, 0.0), _curve(1.0, 3.0, 0.0)])["ci_low"])
    with pytest.raises(TypeError, match="DeletionCurve"):
        faithfulness_effect(["not a curve"])


def test_faithfulness_verdict_passes_for_exact_attributions_and_fails_for_reversed_ones():
    import dataclasses

    rm = CallableRM(_additive, name="additive")
    pairs = _audit_pairs(12, 3)
    audit = attribution_audit(rm, pairs, methods="occlusion", n_random=6, faithfulness_examples=12, n_boot=300, top_k=5)
    (v,) = audit.verdicts()
    # occlusion is exact for an additive RM: deleting its top words drops the reward far more than random words
    assert v.verdict == "pass" and v.primary and v.direction == "lower" and (v.warn, v.fail) == (0.05, 0.0)
    assert v.n == 12 and v.n_clusters == 12 and v.cluster_unit == "prompt"
    assert "SD more than deleting as many random words" in v.sentence and "12 responses, 12 prompts" in v.sentence
    s = audit.summary()
    assert s["faithfulness_occlusion_effect_sd"] == pytest.approx(v.value, abs=1e-6)
    # reversed attributions: the "top" words are the ones that lower the reward -> worse than random
    reversed_exps = [
        dataclasses.replace(e, word_attributions=-e.word_attributions) for e in audit.explanations["occlusion"]
    ]
    curves = [deletion_curve(e, rm, n_random=6, seed=0) for e in reversed_exps if e.n_words >= 5]
    effect = faithfulness_effect(curves, list(range(len(curves))), n_boot=300)
    bad = dataclasses.replace(audit, faithfulness_tests=pd.DataFrame([{"method": "occlusion", **effect}]))
    (v,) = bad.verdicts()
    assert v.value < 0 and v.verdict == "fail"
    assert list(bad.verdicts_frame()["verdict"]) == ["fail"]
    # three responses with noisy effects: the interval straddles the warn margin
    noisy = faithfulness_effect([_curve(0.0, 0.5, 0.0), _curve(1.0, -0.4, 0.0), _curve(2.0, 0.1, 0.0)], n_boot=300)
    small = dataclasses.replace(audit, faithfulness_tests=pd.DataFrame([{"method": "occlusion", **noisy}]))
    assert small.verdicts()[0].verdict == "inconclusive"


def test_primary_method_explains_further_pairs_for_the_faithfulness_check_only():
    rm = CallableRM(_additive, name="additive")
    pairs = _audit_pairs(10, 5)
    pairs["topic"] = [f"t{i // 2}" for i in range(10)]  # two pairs per topic: the check resamples topics
    audit = attribution_audit(
        rm, pairs, methods="occlusion,shap", shap_max_evals=40, n_random=3, faithfulness_examples=8, explain_pairs=3
    )
    # every method explains the first 3 pairs; the tables, agreement and known answer describe those
    assert len(audit.pairs) == 3 and audit.n_responses == 3
    assert [len(v) for v in audit.explanations.values()] == [3, 3]
    assert audit.known_answer.groupby("method")["n"].sum().tolist() == [3, 3]
    # the graded (primary) check: the 3 explained chosen responses and those of pairs 4 to 8, 5 more
    occ = OcclusionExplainer(rm)
    prompts, chosen = list(pairs["prompt"]), list(pairs["chosen"])
    by_hand = occ.attribute_many(prompts[:8], chosen[:8], ids=[f"{i}/chosen" for i in pairs["id"][:8]])
    curves = [deletion_curve(e, rm, n_random=3, seed=0) for e in by_hand if e.n_words >= 5]
    effect = faithfulness_effect(curves, [f"t{i // 2}" for i in range(8)], n_boot=1000, seed=0)
    tests = audit.faithfulness_tests.set_index("method")
    assert tests.loc["occlusion", "n"] == 8 and tests.loc["occlusion", "n_clusters"] == 4
    for key in ("estimate", "ci_low", "ci_high"):
        assert tests.loc["occlusion", key] == pytest.approx(effect[key])
    # the other method's curves use only the responses it explains
    assert tests.loc["shap", "n"] == 3 and tests.loc["shap", "n_clusters"] == 2
    (v, other) = audit.verdicts()
    assert v.primary and v.n == 8 and "8 responses, 4 topics" in v.sentence and not other.primary
    # no more pairs are explained than the check needs, and None explains every pair with every method
    assert (
        attribution_audit(rm, pairs.iloc[:4], methods="occlusion", faithfulness_examples=8, explain_pairs=2)
        .faithfulness_tests["n"]
        .item()
        == 4
    )
    assert attribution_audit(rm, pairs.iloc[:4], methods="occlusion", faithfulness_examples=2).n_responses == 4
    with pytest.raises(ValueError, match="explain_pairs"):
        attribution_audit(rm, pairs, methods="occlusion", explain_pairs=0)
