"""Value heads on the same saved backbone share its pooled states (workbench.models.embedding_cache)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import torch

from workbench.models import ValueHeadRM, load_reward_model
from workbench.models.adapters import ValueHeadConfig
from workbench.models.cache import ScoreCacheWarning
from workbench.models.embedding_cache import EmbeddingCache, embedding_key
from workbench.models.scoring import score_texts
from workbench.paths import minilm_dir

PROMPTS = ["What is the capital of France?", "How do I sort a list?", "Is the sky blue?"] * 2
RESPONSES = ["Paris.", "Use sorted(xs).", "Yes, mostly.", "It is Paris, the largest city.", "xs.sort()", "No."]


def _save(folder, backbone_seed: int, head_seed: int, pooling: str = "mean"):
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(backbone_seed)
    config = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    backbone = BertModel(config)
    torch.manual_seed(head_seed)
    head = torch.nn.Linear(32 * (2 if pooling == "mean+opening" else 1), 1)
    rm = ValueHeadRM(backbone, tok, head, ValueHeadConfig(pooling=pooling, hidden_size=32), device="cpu")
    return rm.save_pretrained(folder)


def _scores(rm):
    return score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores


@pytest.mark.parametrize("pooling", ["mean", "mean+opening"])
def test_a_second_head_on_the_same_backbone_reads_the_pooled_states(tmp_path, pooling):
    a_dir, b_dir = _save(tmp_path / "a", 0, 1, pooling), _save(tmp_path / "b", 0, 2, pooling)
    store = EmbeddingCache(tmp_path / "emb.sqlite")
    a = load_reward_model(str(a_dir))
    a.embedding_cache = store
    got_a = _scores(a)
    assert len(store) == len(set(zip(PROMPTS, RESPONSES)))

    # a save of the same tokenizer after a truncating call records that state in tokenizer.json: still shared
    tok = json.loads((b_dir / "tokenizer.json").read_text())
    tok["truncation"] = {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0}
    (b_dir / "tokenizer.json").write_text(json.dumps(tok))
    b = load_reward_model(str(b_dir))
    b.embedding_cache = store
    assert b.backbone_fingerprint == a.backbone_fingerprint and b.fingerprint != a.fingerprint
    got_b = _scores(b)
    assert not b.weights_loaded  # every pooled state came from the cache: the backbone never loaded
    assert (b.embedding_hits, b.embedding_misses) == (len(PROMPTS), 0) and a.embedding_misses == len(PROMPTS)
    plain_b = load_reward_model(str(b_dir))
    plain_b.embedding_cache = None
    np.testing.assert_allclose(got_b, _scores(plain_b), rtol=0, atol=1e-6)
    plain_a = load_reward_model(str(a_dir))
    plain_a.embedding_cache = None
    np.testing.assert_allclose(got_a, _scores(plain_a), rtol=0, atol=1e-6)
    assert not np.allclose(got_a, got_b)  # different heads, different scores


@pytest.mark.parametrize("first", ["mean", "mean+opening"])
def test_mean_and_mean_plus_opening_heads_share_one_backbone_pass(tmp_path, first):
    """The cache keeps the mean-plus-opening vector for both poolings (the mean is its first half),
    so the demo controls (mean and mean+opening heads on one backbone) share it in either order."""
    second = "mean" if first == "mean+opening" else "mean+opening"
    a = load_reward_model(str(_save(tmp_path / "a", 0, 1, first)))
    b = load_reward_model(str(_save(tmp_path / "b", 0, 2, second)))
    assert a.cache_pooling == b.cache_pooling == "mean+opening"
    assert a.backbone_fingerprint == b.backbone_fingerprint
    store = EmbeddingCache(tmp_path / "emb.sqlite")
    a.embedding_cache = b.embedding_cache = store
    got_a, got_b = _scores(a), _scores(b)
    assert a.embedding_misses == len(PROMPTS) and (b.embedding_hits, b.embedding_misses) == (len(PROMPTS), 0)
    assert not b.weights_loaded
    for rm, got in ((a, got_a), (b, got_b)):
        plain = load_reward_model(rm.path)
        plain.embedding_cache = None
        np.testing.assert_allclose(got, _scores(plain), rtol=0, atol=1e-6)


def test_another_backbone_or_pooling_does_not_share(tmp_path):
    store = EmbeddingCache(tmp_path / "emb.sqlite")
    rms = [
        load_reward_model(str(_save(tmp_path / name, seed, 1, pooling)))
        for name, seed, pooling in [("a", 0, "mean"), ("other", 5, "mean"), ("cls", 0, "cls")]
    ]
    assert len({rm.backbone_fingerprint for rm in rms}) == 3
    for k, rm in enumerate(rms, 1):
        rm.embedding_cache = store
        _scores(rm)
        assert rm.weights_loaded and len(store) == k * len(PROMPTS)


def test_dropout_passes_and_in_memory_models_skip_the_cache(tmp_path):
    store = EmbeddingCache(tmp_path / "emb.sqlite")
    rm = load_reward_model(str(_save(tmp_path / "a", 0, 1)))
    rm.embedding_cache = store
    deterministic = _scores(rm)
    n = len(store)
    for m in rm.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.train()
    noisy = _scores(rm)
    assert len(store) == n and not np.allclose(noisy, deterministic)  # not served from, nor written to, the cache
    rm.model.eval()
    np.testing.assert_array_equal(_scores(rm), deterministic)
    in_memory = ValueHeadRM(rm.model, rm.tokenizer, rm.head, rm.config, device="cpu")
    in_memory.embedding_cache = store
    assert in_memory.backbone_fingerprint is None
    np.testing.assert_allclose(_scores(in_memory), deterministic, atol=1e-6)
    assert len(store) == n


def test_a_damaged_vector_is_not_served_but_recomputed(tmp_path):
    store = EmbeddingCache(tmp_path / "emb.sqlite")
    key = embedding_key("fp", [101, 7, 102])
    store.put_many({key: np.arange(4, dtype=np.float32)})
    np.testing.assert_array_equal(store.get_many([key])[key], np.arange(4, dtype=np.float32))
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE embeddings_v1 SET emb = ? WHERE key = ?", (np.ones(4, np.float32).tobytes(), key))
    with pytest.warns(ScoreCacheWarning, match="1 cached vector"):
        assert store.get_many([key]) == {}
    assert store.n_corrupt == 1
    # scoring through a damaged cache gives the computed scores and rewrites the vectors
    rm = load_reward_model(str(_save(tmp_path / "a", 0, 1)))
    rm.embedding_cache = store
    first = _scores(rm)
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE embeddings_v1 SET checksum = 'x'")
    again = load_reward_model(str(_save(tmp_path / "a2", 0, 1)))
    again.embedding_cache = store
    with pytest.warns(ScoreCacheWarning):
        np.testing.assert_allclose(_scores(again), first, atol=1e-6)
    assert again.weights_loaded
