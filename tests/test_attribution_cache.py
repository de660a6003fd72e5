"""Attribution explanations cached by (model fingerprint, text, method, parameters): same numbers, no recomputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.audits.attribution import (
    ExplanationCache,
    IntegratedGradientsExplainer,
    OcclusionExplainer,
    ShapExplainer,
    attribution_audit,
    explanation_key,
    make_explainer,
)
from workbench.models import CallableRM, load_reward_model

PROMPT = "What is the capital of France?"
RESPONSE = "The capital of France is Paris. You're absolutely right!"

CALLS = {"texts": 0}


def _counting(prompts, responses):
    CALLS["texts"] += len(responses)
    return [float(len(r)) / 10.0 + 2.0 * ("right" in r) for r in responses]


def _same(a, b):
    assert a.words == b.words and a.word_spans == b.word_spans and a.tokens == b.tokens
    np.testing.assert_array_equal(a.word_attributions, b.word_attributions)
    np.testing.assert_array_equal(a.token_attributions, b.token_attributions)
    np.testing.assert_array_equal(a.token_word, b.token_word)
    for name in ("score", "baseline_score", "convergence_delta"):
        x, y = getattr(a, name), getattr(b, name)
        assert (np.isnan(x) and np.isnan(y)) or x == y, name
    assert a.method == b.method and a.prompt == b.prompt and a.response == b.response


@pytest.fixture
def forward_counter():
    """Count forward passes of a torch module with a real forward hook."""
    handles, counts = [], {"n": 0}

    def attach(module):
        handles.append(module.register_forward_hook(lambda *_: counts.__setitem__("n", counts["n"] + 1)))
        return counts

    yield attach
    for h in handles:
        h.remove()


def test_ig_second_call_is_identical_without_forward_passes(tiny_models, tmp_path, forward_counter):
    rm = load_reward_model(str(tiny_models["bert"]))
    counts = forward_counter(rm.model)
    cache = ExplanationCache(tmp_path / "expl")
    first = make_explainer("ig", rm, explanation_cache=cache, n_steps=8).attribute(PROMPT, RESPONSE, example_id=1)
    assert counts["n"] > 0 and cache.misses == 1
    # the cached value equals a computation without any cache
    plain = IntegratedGradientsExplainer(rm, n_steps=8).attribute(PROMPT, RESPONSE, example_id=1)
    _same(first, plain)
    counts["n"] = 0
    again = make_explainer("ig", rm, explanation_cache=ExplanationCache(tmp_path / "expl"), n_steps=8)
    second = again.attribute(PROMPT, RESPONSE, example_id="other id")
    assert counts["n"] == 0 and again.explanation_cache.hits == 1
    _same(first, second)
    assert second.example_id == "other id" and second.info["n_steps"] == 8
    # another method parameter, another text: computed again
    make_explainer("ig", rm, explanation_cache=cache, n_steps=9).attribute(PROMPT, RESPONSE)
    assert counts["n"] > 0
    counts["n"] = 0
    make_explainer("ig", rm, explanation_cache=cache, n_steps=8).attribute(PROMPT, RESPONSE + " Yes.")
    assert counts["n"] > 0


def test_occlusion_and_shap_reuse_by_fingerprint_and_parameters(tmp_path):
    rm = CallableRM(_counting, name="counting")
    cache = ExplanationCache(tmp_path / "expl")
    for cls, kwargs in ((OcclusionExplainer, {}), (ShapExplainer, {"max_evals": 40})):
        CALLS["texts"] = 0
        ex = cls(rm, **kwargs)
        ex.explanation_cache = cache
        first = ex.attribute(PROMPT, RESPONSE)
        assert CALLS["texts"] > 0
        CALLS["texts"] = 0
        _same(first, ex.attribute(PROMPT, RESPONSE))
        assert CALLS["texts"] == 0
        # a different replacement is a different explanation
        other = cls(rm, replacement="[MASK]", **kwargs)
        other.explanation_cache = cache
        other.attribute(PROMPT, RESPONSE)
        assert CALLS["texts"] > 0
    # a model with another fingerprint never sees these entries
    CALLS["texts"] = 0
    renamed = CallableRM(_counting, name="counting", version="v2")
    ex = OcclusionExplainer(renamed)
    ex.explanation_cache = cache
    ex.attribute(PROMPT, RESPONSE)
    assert CALLS["texts"] > 0


def test_key_covers_model_method_parameters_text_and_history():
    base = explanation_key("fp", "occlusion", {"replacement": ""}, "p", "r")
    assert base == explanation_key("fp", "occlusion", {"replacement": ""}, "p", "r")
    assert base != explanation_key("fp2", "occlusion", {"replacement": ""}, "p", "r")
    assert base != explanation_key("fp", "shap", {"replacement": ""}, "p", "r")
    assert base != explanation_key("fp", "occlusion", {"replacement": "x"}, "p", "r")
    assert base != explanation_key("fp", "occlusion", {"replacement": ""}, "p2", "r")
    assert base != explanation_key("fp", "occlusion", {"replacement": ""}, "p", "r2")
    assert base != explanation_key("fp", "occlusion", {"replacement": ""}, "p", "r", [{"role": "user"}])
    assert base != explanation_key("fp", "occlusion", {"replacement": ""}, "p", "r", max_length=8)


def test_damaged_entry_is_recomputed(tmp_path):
    rm = CallableRM(_counting, name="counting")
    cache = ExplanationCache(tmp_path / "expl")
    ex = OcclusionExplainer(rm)
    ex.explanation_cache = cache
    first = ex.attribute(PROMPT, RESPONSE)
    [entry] = list((tmp_path / "expl").rglob("*.json"))
    entry.write_text("{not json")
    CALLS["texts"] = 0
    _same(first, ex.attribute(PROMPT, RESPONSE))
    assert CALLS["texts"] > 0
    assert cache.get(entry.stem) is not None  # rewritten


def _toy_pairs(n: int, chosen: str) -> pd.DataFrame:
    """``n`` pairs: a question, a chosen answer from the ``chosen`` template (``{i}``), a short rejected one."""
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [f"question number {i}?" for i in range(n)],
            "chosen": [chosen.format(i=i) for i in range(n)],
            "rejected": [f"short {i}" for i in range(n)],
        }
    )


def test_audit_twice_reuses_every_explanation_with_identical_results(tmp_path):
    rm = CallableRM(_counting, name="counting")
    pairs = _toy_pairs(4, "a long helpful answer with words {i} you are right")
    options = dict(methods="occlusion,shap", shap_max_evals=30, faithfulness_examples=2, n_random=2, n_boot=50)
    cache = ExplanationCache(tmp_path / "expl")
    one = attribution_audit(rm, pairs, explanation_cache=cache, **options)
    hits = cache.hits
    two = attribution_audit(rm, pairs, explanation_cache=cache, **options)
    assert cache.hits - hits == 2 * 4 + 2  # both methods, every response, and the margin pair's two sides
    for name in ("occlusion", "shap"):
        for a, b in zip(one.explanations[name], two.explanations[name]):
            _same(a, b)
    pd.testing.assert_frame_equal(one.to_frame(), two.to_frame())
    assert [repr(v) for v in one.verdicts()] == [repr(v) for v in two.verdicts()]
    # without the cache: the same numbers (shap's Partition explainer itself varies by an ulp between calls)
    plain = attribution_audit(rm, pairs, explanation_cache=False, **options)
    for name in ("occlusion", "shap"):
        for a, b in zip(one.explanations[name], plain.explanations[name]):
            assert a.words == b.words
            np.testing.assert_allclose(a.word_attributions, b.word_attributions, rtol=1e-12, atol=1e-12)


def test_faithfulness_scores_the_methods_shared_random_deletions_once(tmp_path):
    """The methods' random deletions of one response are the same texts (same seed): with a score cache
    they are scored once, and every number is the one computed without it."""
    from workbench.models.cache import ScoreCache

    rm = CallableRM(_counting, name="counting")
    pairs = _toy_pairs(3, "a long helpful answer with several more words {i} you are right")
    options = dict(methods="occlusion,shap", shap_max_evals=30, faithfulness_examples=3, n_random=4, n_boot=50)
    cache = ExplanationCache(tmp_path / "expl")
    attribution_audit(rm, pairs, explanation_cache=cache, score_cache=None, **options)  # explanations cached
    CALLS["texts"] = 0
    plain = attribution_audit(rm, pairs, explanation_cache=cache, score_cache=None, **options)
    uncached = CALLS["texts"]
    CALLS["texts"] = 0
    shared = attribution_audit(
        rm, pairs, explanation_cache=cache, score_cache=ScoreCache(tmp_path / "s.sqlite"), **options
    )
    # per response: the random texts of the second method (and its own top-k deletions where they repeat) are hits
    curves = [c for c in shared.curves if c.method == "shap"]
    # 3 responses x 4 ks x 4 draws = 48 random deletions of the second method, less repeats among themselves
    assert len(curves) == 3 and 0 < CALLS["texts"] <= uncached - 40  # measured: 126 texts without, 72 with
    pd.testing.assert_frame_equal(plain.faithfulness, shared.faithfulness)
    pd.testing.assert_frame_equal(plain.faithfulness_tests, shared.faithfulness_tests)
