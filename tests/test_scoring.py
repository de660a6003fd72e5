"""The scoring engine: batching plan, persistent cache, resume after interruption."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.models import (
    CallableRM,
    ScoreCache,
    load_reward_model,
    plan_batches,
    score_key,
    score_pairs,
    score_texts,
)


def test_plan_batches_respects_budget_and_covers_every_index():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=500).tolist()
    batches = plan_batches(lengths, token_budget=2048, max_batch_size=64)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))
    for b in batches:
        assert len(b) <= 64
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 2048
    # longest first: each batch's longest is no longer than the previous batch's shortest
    for prev, cur in zip(batches, batches[1:]):
        assert max(lengths[i] for i in cur) <= min(lengths[i] for i in prev)
    assert plan_batches([5000], token_budget=100) == [[0]]
    with pytest.raises(ValueError):
        plan_batches([1], token_budget=0)


def test_length_sorting_reduces_padding(tiny_models):
    rm = load_reward_model(str(tiny_models["gpt2"]))
    rng = np.random.default_rng(0)
    responses = [" ".join(["word"] * int(n)) for n in rng.integers(1, 60, 64)]
    prompts = ["q"] * 64
    sorted_run = score_texts(rm, prompts, responses, cache=None, progress=False, token_budget=1024)
    fixed_run = score_texts(rm, prompts, responses, cache=None, progress=False, strategy="fixed", batch_size=16)
    assert 0 < sorted_run.padding_fraction < fixed_run.padding_fraction < 1
    single = score_texts(
        rm, prompts + prompts[:1], responses + responses[:1], cache=None, progress=False, strategy="fixed", batch_size=1
    )
    assert single.padding_fraction == 0.0  # one text per batch, duplicates computed once
    assert single.n_batches == len(set(responses))
    np.testing.assert_allclose(sorted_run.scores, fixed_run.scores, atol=1e-4)


def test_cache_hits_on_rerun_and_is_keyed_by_model_text_and_length(tmp_path, tiny_models):
    cache = ScoreCache(tmp_path / "c.sqlite")
    rm = load_reward_model(str(tiny_models["bert"]))
    prompts, responses = ["a", "b", "a"], ["x", "y", "x"]
    first = score_texts(rm, prompts, responses, cache=cache, progress=False)
    assert first.n_cached == 0 and first.n_computed == 3
    assert len(cache) == 2  # the duplicate is computed and stored once
    second = score_texts(rm, prompts, responses, cache=cache, progress=False)
    assert second.n_cached == 3 and second.n_computed == 0
    np.testing.assert_array_equal(first.scores, second.scores)
    # Another "notebook" (a fresh cache object on the same file) hits too.
    third = score_texts(
        load_reward_model(str(tiny_models["bert"])), ["a"], ["x"], cache=ScoreCache(cache.path), progress=False
    )
    assert third.n_cached == 1
    # A different max_length or another model misses.
    assert (
        score_texts(
            load_reward_model(str(tiny_models["bert"]), max_length=64), ["a"], ["x"], cache=cache, progress=False
        ).n_cached
        == 0
    )
    assert (
        score_texts(load_reward_model(str(tiny_models["gpt2"])), ["a"], ["x"], cache=cache, progress=False).n_cached
        == 0
    )
    k = score_key(rm.fingerprint, rm.max_length, rm.format("a", "x"))
    assert cache.get_many([k])[k] == pytest.approx(first.scores[0])


def test_interrupted_run_resumes_from_finished_batches(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    calls = []

    def flaky(prompts, responses):
        calls.append(len(responses))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return [float(len(r)) for r in responses]

    rm = CallableRM(flaky, name="flaky", fingerprint="flaky-v1")
    responses = [f"response number {i}" + "!" * i for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        score_texts(rm, ["p"] * 10, responses, cache=cache, max_batch_size=3, progress=False)
    assert len(cache) == 6  # two finished batches of three survived
    calls.clear()
    resumed = score_texts(rm, ["p"] * 10, responses, cache=cache, max_batch_size=3, progress=False)
    assert resumed.n_cached == 6 and resumed.n_computed == 4
    assert sum(calls) == 4
    assert resumed.scores.tolist() == [float(len(r)) for r in responses]


def test_cache_write_is_atomic(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    with pytest.raises(TypeError):
        cache.put_many({"a": 1.0, "b": object()})  # second value fails: nothing lands
    assert len(cache) == 0


def test_score_pairs_frame(tiny_models):
    frame = pd.DataFrame(
        {
            "id": ["p1", "p2"],
            "prompt": ["q1", "q2"],
            "chosen": ["good answer", "fine"],
            "rejected": ["bad", "worse answer here"],
            "label": [1.0, 0.5],
            "category": ["a", "b"],
        }
    )
    result = score_pairs(str(tiny_models["gpt2"]), frame, cache=None, progress=False)
    out = result.to_frame()
    assert list(out["id"]) == ["p1", "p2"]
    direct = score_texts(
        str(tiny_models["gpt2"]), ["q1", "q2"], ["good answer", "fine"], cache=None, progress=False
    ).scores
    np.testing.assert_allclose(out["chosen_score"], direct, atol=1e-6)
    np.testing.assert_allclose(out["margin"], out["chosen_score"] - out["rejected_score"])
    assert out["label"].tolist() == [1.0, 0.5]
    assert out["category"].tolist() == ["a", "b"]


def test_input_validation():
    rm = CallableRM(lambda p, r: [0.0] * len(r), fingerprint="zero")
    with pytest.raises(ValueError, match="differ in length"):
        score_texts(rm, ["a"], ["b", "c"], cache=None, progress=False)
    with pytest.raises(TypeError, match="item 0"):
        score_texts(rm, [None], ["b"], cache=None, progress=False)
    with pytest.raises(ValueError, match="strategy"):
        score_texts(rm, ["a"], ["b"], cache=None, strategy="random", progress=False)
    with pytest.raises(ValueError, match="non-finite"):
        score_texts(
            CallableRM(lambda p, r: [float("nan")] * len(r), fingerprint="nan"),
            ["a"],
            ["b"],
            cache=None,
            progress=False,
        )
