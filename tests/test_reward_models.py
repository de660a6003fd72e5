"""Adapters behind load_reward_model, checked against direct transformers forward passes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.models import (
    CallableRM,
    Formatter,
    PrecomputedScoresRM,
    SequenceClassifierRM,
    TextTemplate,
    ValueHeadConfig,
    ValueHeadRM,
    load_reward_model,
    pool_hidden,
    score_texts,
)
from workbench.paths import minilm_dir

PROMPTS = ["What is 2+2?", "Tell me about Paris.", "hi", "Write a function that adds two numbers."]
RESPONSES = [
    "It is 4.",
    "Paris is the capital of France and a big city with many museums, cafes and parks.",
    "Hello there! " * 8,
    "def add(a, b):\n    return a + b",
]
ARCHS = ["bert", "deberta", "gpt2", "llama"]


def reference_score(path, text_or_pair, add_special=True) -> float:
    """Score one unpadded input with plain transformers: the independent reference."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    args = text_or_pair if isinstance(text_or_pair, tuple) else (text_or_pair,)
    enc = tok(*args, return_tensors="pt", add_special_tokens=add_special)
    with torch.no_grad():
        return float(model(**enc).logits[0, 0])


@pytest.mark.parametrize("arch", ARCHS)
def test_sequence_classifier_matches_plain_transformers(tiny_models, arch):
    rm = load_reward_model(str(tiny_models[arch]))
    assert isinstance(rm, SequenceClassifierRM)
    got = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    for p, r, g in zip(PROMPTS, RESPONSES, got):
        formatted = rm.format(p, r)
        ref = reference_score(tiny_models[arch], formatted, add_special=rm.formatter.style != "chat_template")
        assert g == pytest.approx(ref, abs=1e-4)
    assert np.ptp(got) > 1e-3  # the tiny models do tell the texts apart


@pytest.mark.parametrize("arch", ARCHS)
def test_scores_do_not_depend_on_batch_size_or_padding_side(tiny_models, arch):
    rm = load_reward_model(str(tiny_models[arch]))
    one = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False, strategy="fixed", batch_size=1).scores
    for kwargs in [
        dict(strategy="fixed", batch_size=4),
        dict(strategy="fixed", batch_size=3, padding_side="left"),
        dict(token_budget=10**6, padding_side="right"),
        dict(token_budget=10**6, padding_side="left"),
        dict(token_budget=40),
    ]:
        other = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False, **kwargs).scores
        np.testing.assert_allclose(other, one, atol=1e-4, err_msg=str(kwargs))


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_tensors_is_the_differentiable_forward_of_scoring(tiny_models, arch):
    rm = load_reward_model(str(tiny_models[arch]))
    ids = [rm.encode(rm.format(p, r))[0] for p, r in zip(PROMPTS, RESPONSES)]
    expected = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    input_ids, mask = rm.pad(ids)
    embeds = []

    def keep_grad(module, inputs, output):
        output.retain_grad()
        embeds.append(output)

    with torch.enable_grad():
        handle = rm.model.get_input_embeddings().register_forward_hook(keep_grad)
        try:
            out = rm.forward_tensors(input_ids, mask)
        finally:
            handle.remove()
        assert out.shape == (len(ids),) and out.dtype == torch.float32 and out.requires_grad
        out.sum().backward()
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected, atol=1e-4)
    assert embeds[0].grad is not None and float(embeds[0].grad.abs().sum()) > 0
    np.testing.assert_allclose(rm.forward_ids(ids), expected, atol=1e-4)


def test_forward_tensors_reads_the_given_pool_index(tiny_models):
    rm = load_reward_model(str(tiny_models["gpt2"]))
    input_ids, mask = rm.pad([rm.encode(rm.format(PROMPTS[0], RESPONSES[0]))[0]])
    last = input_ids.shape[1] - 1
    idx = rm.pool_index(input_ids, mask)
    assert int(idx[0]) == last
    # A perturbed copy whose last token is the pad id moves the default index; the caller can keep the real one.
    perturbed = input_ids.clone()
    perturbed[0, -1] = rm.pad_id
    assert int(rm.pool_index(perturbed, mask)[0]) == last - 1
    with torch.no_grad():
        moved = rm.forward_tensors(perturbed, mask)
        kept = rm.forward_tensors(perturbed, mask, pool_index=idx)
        per_position = rm.model(input_ids=perturbed, attention_mask=mask).logits  # transformers pools itself
    assert float(moved[0]) != pytest.approx(float(kept[0]), abs=1e-6)
    assert float(moved[0]) == pytest.approx(float(per_position[0, 0]), abs=1e-4)
    assert load_reward_model(str(tiny_models["bert"])).pool_index(input_ids, mask) is None


def test_load_reward_model_lives_in_loading_and_the_package_surface():
    import workbench.models.adapters as adapters
    from workbench.models import load_reward_model as from_package
    from workbench.models.loading import load_reward_model as from_loading

    assert from_package is from_loading is load_reward_model
    assert not hasattr(adapters, "load_reward_model")  # adapters no longer knows about the demo RMs


def test_top_level_quick_start_names_are_lazy():
    import subprocess
    import sys

    code = (
        "import sys, workbench\n"
        "assert 'torch' not in sys.modules and 'workbench.models' not in sys.modules\n"
        "assert set(dir(workbench)) >= set(workbench.__all__) | {'__version__'}\n"
        "from workbench import load_reward_model, load_data, load_preferences, score_pairs\n"
        "import workbench.models, workbench.data\n"
        "assert load_reward_model is workbench.models.load_reward_model and score_pairs is workbench.models.score_pairs\n"
        "assert load_data is workbench.data.load_data and load_preferences is workbench.data.load_preferences\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    workbench.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_chat_template_is_used_without_double_bos(tiny_models):
    rm = load_reward_model(str(tiny_models["llama"]))
    assert rm.formatter.style == "chat_template"
    text = rm.format("hi", "hello")
    assert text.startswith("<s><|user|>\nhi\n<|assistant|>\nhello")
    ids, truncated = rm.encode(text)
    assert not truncated
    assert ids.count(rm.tokenizer.bos_token_id) == 1


def test_plain_template_for_tokenizers_without_chat_template(tiny_models):
    rm = load_reward_model(str(tiny_models["gpt2"]))
    assert rm.formatter.style == "template"
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert rm.format("q", "r", history) == "User: a\n\nAssistant: b\n\nUser: q\n\nAssistant: r"
    custom = load_reward_model(
        str(tiny_models["gpt2"]), template=TextTemplate(user="Q: {content}\n", assistant="A: {content}\n")
    )
    assert custom.format("q", "r") == "Q: q\nA: r"
    assert custom.fingerprint != rm.fingerprint  # formatting is part of the identity


def test_pair_style_matches_tokenizer_text_pair(tiny_models):
    rm = load_reward_model(str(tiny_models["deberta"]), format_style="pair")
    got = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    ref = [reference_score(tiny_models["deberta"], (p, r)) for p, r in zip(PROMPTS, RESPONSES)]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_truncation_is_counted(tiny_models):
    from transformers import AutoTokenizer

    rm = load_reward_model(str(tiny_models["bert"]), max_length=12)
    result = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False)
    tok = AutoTokenizer.from_pretrained(tiny_models["bert"])
    expected = [len(tok(rm.format(p, r))["input_ids"]) > 12 for p, r in zip(PROMPTS, RESPONSES)]
    assert result.truncated.tolist() == expected
    assert result.n_truncated == sum(expected) > 0
    assert result.n_tokens.max() == 12


def test_fingerprint_is_stable_and_distinguishes_models(tiny_models):
    a1 = load_reward_model(str(tiny_models["bert"]))
    a2 = load_reward_model(str(tiny_models["bert"]))
    b = load_reward_model(str(tiny_models["deberta"]))
    c = load_reward_model(str(tiny_models["bert"]), max_length=64)
    assert a1.fingerprint == a2.fingerprint
    assert len({a1.fingerprint, b.fingerprint, c.fingerprint}) == 3


def test_two_logit_classifier_is_rejected(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
    )
    model.save_pretrained(tmp_path / "two")
    tok.save_pretrained(tmp_path / "two")
    with pytest.raises(ValueError, match="exactly one output logit"):
        load_reward_model(str(tmp_path / "two"))


def test_trust_remote_code_is_off_by_default(tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "my-custom-rm",
                "auto_map": {
                    "AutoConfig": "configuration_custom.CustomConfig",
                    "AutoModelForSequenceClassification": "modeling_custom.CustomRM",
                },
            }
        )
    )
    (folder / "configuration_custom.py").write_text("raise RuntimeError('remote code must not run')\n")
    with pytest.raises(Exception) as info:
        load_reward_model(str(folder))
    assert "remote code must not run" not in str(info.value)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_reward_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_reward_model(str(tmp_path / "nope" / "deeper"))


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_value_head_rm_round_trip_matches_manual_pooling(tmp_path, pooling):
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(1)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    backbone = BertModel(
        BertConfig(
            vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
        )
    )
    head = torch.nn.Linear(32, 1)
    rm = ValueHeadRM(backbone, tok, head, ValueHeadConfig(pooling=pooling, hidden_size=32), device="cpu")
    folder = rm.save_pretrained(tmp_path / f"vh-{pooling}")
    loaded = load_reward_model(str(folder))
    assert isinstance(loaded, ValueHeadRM) and loaded.config.pooling == pooling
    got = score_texts(loaded, PROMPTS, RESPONSES, cache=None, progress=False).scores

    ref_model = AutoModel.from_pretrained(folder).eval()
    for p, r, g in zip(PROMPTS, RESPONSES, got):
        enc = tok(loaded.format(p, r), return_tensors="pt")
        with torch.no_grad():
            hidden = ref_model(**enc).last_hidden_state[0]
        vec = {"mean": hidden.mean(0), "cls": hidden[0], "last": hidden[-1]}[pooling]
        assert g == pytest.approx(float(head(vec).detach()), abs=1e-4)
    left = score_texts(
        loaded, PROMPTS, RESPONSES, cache=None, progress=False, padding_side="left", token_budget=10**6
    ).scores
    np.testing.assert_allclose(left, got, atol=1e-4)


def test_value_head_mean_plus_opening_pooling_reads_the_response_opening(tmp_path):
    """``mean+opening``: [mean of all tokens, mean of the first k tokens after the last "Assistant:" marker]."""
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(2)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    backbone = BertModel(
        BertConfig(
            vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
        )
    )
    head = torch.nn.Linear(64, 1)
    config = ValueHeadConfig(pooling="mean+opening", hidden_size=32, opening_tokens=3)
    assert config.pooled_size == 64
    rm = ValueHeadRM(backbone, tok, head, config, device="cpu")
    folder = rm.save_pretrained(tmp_path / "vh-opening")
    loaded = load_reward_model(str(folder))
    assert loaded.config.pooling == "mean+opening" and loaded.config.opening_tokens == 3
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there, friend."}]
    prompts, responses = PROMPTS + ["And now?"], RESPONSES + ["Sure thing, here it is."]
    got = score_texts(loaded, prompts, responses, cache=None, progress=False).scores
    multi = score_texts(loaded, ["And now?"], ["Sure thing, here it is."], [history], cache=None, progress=False)

    ref_model = AutoModel.from_pretrained(folder).eval()
    marker = tok("Assistant:", add_special_tokens=False)["input_ids"]
    for text, g in [(loaded.format(p, r), g) for p, r, g in zip(prompts, responses, got)] + [
        (loaded.format("And now?", "Sure thing, here it is.", history), multi.scores[0])
    ]:
        ids = tok(text)["input_ids"]
        starts = [i + len(marker) for i in range(len(ids)) if ids[i : i + len(marker)] == marker]
        start = starts[-1]  # the last turn's reply
        assert tok.decode(ids[start : start + 3]).split()[0].lower() in {
            r.split()[0].lower().strip(",") for r in responses
        }
        with torch.no_grad():
            hidden = ref_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        vec = torch.cat([hidden.mean(0), hidden[start : start + 3].mean(0)])
        assert g == pytest.approx(float(head(vec).detach()), abs=1e-4)
    left = score_texts(loaded, prompts, responses, cache=None, progress=False, padding_side="left", token_budget=10**6)
    np.testing.assert_allclose(left.scores, got, atol=1e-4)


def test_mean_plus_opening_without_marker_uses_the_mean_twice():
    from workbench.models.adapters import pool_mean_opening

    hidden = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    ids = torch.tensor([[1, 7, 8, 3, 4], [1, 2, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out = pool_mean_opening(hidden, mask, ids, [7, 8], opening_tokens=2)
    np.testing.assert_allclose(out[0, :2], hidden[0].mean(0))
    np.testing.assert_allclose(out[0, 2:], hidden[0, 3:5].mean(0))  # the two tokens after the marker 7, 8
    np.testing.assert_allclose(out[1, :2], hidden[1, :3].mean(0))
    np.testing.assert_allclose(out[1, 2:], hidden[1, :3].mean(0))  # no marker: the mean again
    with pytest.raises(ValueError, match="format_style 'template'"):
        ValueHeadConfig(pooling="mean+opening", format_style="chat_template")


def test_pool_hidden_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="pooling"):
        pool_hidden(torch.zeros(1, 2, 3), torch.ones(1, 2), "max")
    with pytest.raises(ValueError, match="pooling"):
        ValueHeadConfig(pooling="max")


def length_reward(prompts, responses):
    return [len(r) / 10.0 for r in responses]


def test_callable_and_python_spec():
    rm = load_reward_model(length_reward)
    assert isinstance(rm, CallableRM)
    scores = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    np.testing.assert_allclose(scores, [len(r) / 10 for r in RESPONSES])
    by_name = load_reward_model("python:test_reward_models:length_reward")
    assert by_name.fingerprint == rm.fingerprint or by_name.name.endswith("length_reward")
    unbatched = CallableRM(lambda p, r: float(len(p)), batched=False)
    assert score_texts(unbatched, ["ab"], ["x"], cache=None, progress=False).scores.tolist() == [2.0]
    with pytest.raises(ValueError, match="returned 1 scores for 2"):
        score_texts(CallableRM(lambda p, r: [1.0]), ["a", "b"], ["c", "d"], cache=None, progress=False)


def test_precomputed_scores(tmp_path):
    path = tmp_path / "scores.csv"
    pd.DataFrame({"prompt": PROMPTS, "response": RESPONSES, "score": [1.0, 2.0, 3.0, 4.0]}).to_csv(path, index=False)
    rm = load_reward_model(str(path))
    assert isinstance(rm, PrecomputedScoresRM)
    assert score_texts(rm, PROMPTS[::-1], RESPONSES[::-1], cache=None, progress=False).scores.tolist() == [
        4.0,
        3.0,
        2.0,
        1.0,
    ]
    with pytest.raises(KeyError, match="1 of 1"):
        score_texts(rm, ["unknown"], ["text"], cache=None, progress=False)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"prompt": ["a", "b"], "response": ["x", "y"], "score": ["1.5", "oops"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv, row 3, field 'score'"):
        load_reward_model(f"scores:{bad}")


def test_formatter_validation():
    with pytest.raises(ValueError, match="format style"):
        Formatter(style="weird")
    with pytest.raises(ValueError, match="unknown role"):
        TextTemplate().render([{"role": "tool", "content": "x"}])
