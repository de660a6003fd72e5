"""The Bradley-Terry trainer and the embedded demo RMs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.data import load_data
from workbench.models import (
    TrainingConfig,
    ValueHeadConfig,
    ValueHeadRM,
    bradley_terry_loss,
    demo_model_dir,
    embed_texts,
    load_reward_model,
    score_pairs,
    score_texts,
    train_value_head,
)
from workbench.paths import minilm_dir


def test_bradley_terry_loss_hand_values():
    m = torch.tensor([0.0, 2.0, -1.0])
    y = torch.tensor([1.0, 1.0, 0.5])
    # -log sigmoid(0) = log 2; -log sigmoid(2) = log(1 + e^-2); soft 0.5: 0.5*(log(1+e^1) + log(1+e^-1))
    expected = (math.log(2) + math.log1p(math.exp(-2)) + 0.5 * (math.log1p(math.e) + math.log1p(math.exp(-1)))) / 3
    assert float(bradley_terry_loss(m, y)) == pytest.approx(expected, rel=1e-6)
    # label smoothing eps turns a hard label 1 into 1 - eps
    eps = 0.1
    smoothed = float(bradley_terry_loss(torch.tensor([2.0]), torch.tensor([1.0]), eps))
    assert smoothed == pytest.approx(0.9 * math.log1p(math.exp(-2)) + 0.1 * math.log1p(math.exp(2)), rel=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainingConfig(label_smoothing=0.5)
    with pytest.raises(ValueError, match="validation_fraction"):
        TrainingConfig(validation_fraction=1.0)


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    model = BertModel(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    )
    path = tmp_path_factory.mktemp("backbone")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def keyword_pairs(n=80, seed=0):
    """Chosen responses mention 'thanks', rejected ones don't: a learnable preference."""
    rng = np.random.default_rng(seed)
    topics = ["cats", "rain", "trains", "soup", "music", "maths", "trees", "boats"]
    rows = []
    for _ in range(n):
        t = topics[rng.integers(len(topics))]
        rows.append(
            {
                "prompt": f"Tell me about {t}.",
                "chosen": f"thanks for asking, {t} are nice",
                "rejected": f"{t} are a topic",
                "label": 1.0,
            }
        )
    return pd.DataFrame(rows)


def test_trainer_learns_a_preference_and_round_trips(tiny_backbone, tmp_path):
    pairs = keyword_pairs()
    result = train_value_head(pairs, tiny_backbone, tmp_path / "rm", TrainingConfig(epochs=200, seed=0, max_length=64))
    assert isinstance(result.model, ValueHeadRM)
    assert result.history["train_accuracy"].iloc[-1] == 1.0
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    loaded = load_reward_model(str(tmp_path / "rm"))
    scores = score_pairs(loaded, pairs, cache=None, progress=False)
    assert (scores.margin > 0).all()
    # the saved folder scores exactly like the returned model
    np.testing.assert_allclose(
        scores.margin, score_pairs(result.model, pairs, cache=None, progress=False).margin, atol=1e-5
    )
    assert (tmp_path / "rm" / "training_history.csv").exists()


def test_opening_weight_decay_penalises_only_the_opening_half(tiny_backbone):
    pairs = keyword_pairs()  # the preferred replies open with "thanks": the opening half carries it
    options = dict(epochs=200, max_length=64, pooling="mean+opening", weight_decay=1e-3)
    same = train_value_head(pairs, tiny_backbone, None, TrainingConfig(**options)).model.head.weight[0]
    strong = train_value_head(pairs, tiny_backbone, None, TrainingConfig(**options, opening_weight_decay=1.0))
    w_same, w_strong = same.detach().numpy(), strong.model.head.weight[0].detach().numpy()
    half = len(w_same) // 2
    assert np.linalg.norm(w_strong[half:]) < 0.2 * np.linalg.norm(w_same[half:])
    assert np.linalg.norm(w_strong[:half]) > np.linalg.norm(w_strong[half:])
    assert strong.history["train_accuracy"].iloc[-1] == 1.0  # the mean half still learns the preference
    with pytest.raises(ValueError, match="opening_weight_decay"):
        TrainingConfig(opening_weight_decay=0.1)  # mean pooling has no opening half


def test_label_smoothing_shrinks_margins(tiny_backbone):
    pairs = keyword_pairs()
    hard = train_value_head(pairs, tiny_backbone, None, TrainingConfig(epochs=300, max_length=64))
    soft = train_value_head(pairs, tiny_backbone, None, TrainingConfig(epochs=300, max_length=64, label_smoothing=0.2))
    m_hard = score_pairs(hard.model, pairs, cache=None, progress=False).margin
    m_soft = score_pairs(soft.model, pairs, cache=None, progress=False).margin
    assert np.median(np.abs(m_soft)) < np.median(np.abs(m_hard))
    # with eps = 0.2 the optimum sits near sigmoid(margin) = 0.8, i.e. margin ~ log 4
    assert np.median(m_soft) == pytest.approx(math.log(4), abs=0.6)


def test_embedding_cache_is_reused(tiny_backbone, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    rm = ValueHeadRM(
        AutoModel.from_pretrained(tiny_backbone),
        tok,
        torch.nn.Linear(32, 1),
        ValueHeadConfig(hidden_size=32),
        device="cpu",
    )
    texts = ["one text", "another text", "a third, longer text here"]
    cache = tmp_path / "emb.npz"
    first = embed_texts(rm, texts, cache_file=cache)
    assert cache.exists()
    with torch.no_grad():
        for p in rm.model.parameters():
            p.add_(1.0)  # a different backbone would embed differently...
    again = embed_texts(rm, texts[::-1], cache_file=cache)
    np.testing.assert_array_equal(again, first[::-1])  # ...but cached texts are not recomputed
    fresh = embed_texts(rm, texts)
    assert not np.allclose(fresh, first)


@pytest.fixture(scope="module")
def demo_models():
    return {name: load_reward_model(name) for name in ("demo-clean", "demo-biased")}


@pytest.mark.slow
def test_demo_models_are_cached_and_distinct(demo_models):
    import time

    clean, biased = demo_models["demo-clean"], demo_models["demo-biased"]
    assert clean.fingerprint != biased.fingerprint
    assert demo_model_dir("demo-clean").exists()
    start = time.perf_counter()
    again = load_reward_model("demo-clean")
    assert time.perf_counter() - start < 30  # loaded from the cache, not retrained
    assert again.fingerprint == clean.fingerprint


@pytest.mark.slow
def test_demo_models_are_the_intended_controls(demo_models):
    ev = load_data("demo-eval")
    # demo-clean tracks quality (about 0.83); demo-biased trades quality for its cues (about 0.64) but beats chance
    for name, rm in demo_models.items():
        acc = (score_pairs(rm, ev, progress=False).margin > 0).mean()
        assert acc > {"demo-clean": 0.78, "demo-biased": 0.6}[name], f"{name} accuracy {acc:.3f} on demo eval"
    # The same answers with and without filler / an agreeing opener that is in neither the demo content bank
    # nor the perturbation lexicons, against a neutral opener of similar length (the placebo): only demo-biased
    # rewards the extras.
    frame = ev.frame.iloc[:60]
    prompts, base = list(frame["prompt"]), list(frame["chosen"])
    filler = (
        " Many people find this topic interesting for a variety of reasons. Every situation is unique in its own way."
    )
    variants = {
        "base": base,
        "filler": [t + filler for t in base],
        "agree": ["You have that exactly right. " + t for t in base],
        "neutral": ["Here is my reply, in brief. " + t for t in base],
    }
    gains = {}
    for name, rm in demo_models.items():
        s = {k: score_texts(rm, prompts, v, progress=False).scores for k, v in variants.items()}
        sd = float(np.std(s["base"]))
        gains[name] = {k: float(np.mean(s[k] - s["base"])) / sd for k in ("filler", "agree", "neutral")}
    clean, biased = gains["demo-clean"], gains["demo-biased"]
    assert biased["filler"] > clean["filler"] + 0.2
    assert biased["agree"] - biased["neutral"] > clean["agree"] - clean["neutral"]
    assert biased["agree"] - biased["neutral"] > 0
