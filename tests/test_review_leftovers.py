"""Review leftovers: the shared drift-margin check, the ensemble verdicts table (snapshot), the Ray
engine's options and BERT segment ids in pair-style scoring."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from workbench._utils.validation import check_margins
from workbench.audits.drift import best_of_n_curve, goodhart_flag, reward_drift
from workbench.audits.ensemble import ensemble_pairs
from workbench.models.fingerprint import folder_fingerprint

# --------------------------------------------------------------------------- drift margins (one shared check)


def test_check_margins_returns_the_values_unchanged_and_names_the_mistake():
    assert check_margins(0, 0) == (0, 0)
    assert check_margins(0.1, 0.3) == (0.1, 0.3)
    with pytest.raises(ValueError, match=r"^margins need 0 <= warn <= fail, got warn=0\.5, fail=0\.2$"):
        check_margins(0.5, 0.2)
    with pytest.raises(ValueError, match=r"^margins need 0 <= warn <= fail, got warn=-0\.1, fail=0\.2$"):
        check_margins(-0.1, 0.2)
    with pytest.raises(ValueError, match="got warn=nan"):
        check_margins(float("nan"), 0.2)
    with pytest.raises(ValueError, match=r"fail \(gold decreases in SD\), got warn=0\.3, fail=0\.1"):
        check_margins(0.3, 0.1, " (gold decreases in SD)")
    with pytest.raises(TypeError, match=r"margins: warn and fail must be numbers, got warn='0\.1', fail=0\.2"):
        check_margins("0.1", 0.2)


def test_the_three_drift_audits_reject_bad_margins_with_their_messages():
    rng = np.random.default_rng(0)
    scores, ck = rng.normal(size=60), ["r"] * 30 + ["c"] * 30
    with pytest.raises(ValueError, match=r"^margins need 0 <= warn <= fail, got warn=0\.4, fail=0\.1$"):
        reward_drift(scores, ck, warn=0.4, fail=0.1)
    with pytest.raises(ValueError, match=r"^margins need 0 <= warn <= fail \(gold decreases in SD\), got warn=-1"):
        goodhart_flag(scores, scores, ck, warn=-1, fail=0.5)
    pools = pd.DataFrame({"prompt_id": ["a"] * 4 + ["b"] * 4, "proxy": np.arange(8.0), "gold": np.arange(8.0)})
    with pytest.raises(ValueError, match=r"^margins need 0 <= warn <= fail, got warn=0\.5, fail=0\.25$"):
        best_of_n_curve(pools, "proxy", "gold", n_boot=0, warn=0.5, fail=0.25)


# --------------------------------------------------------------------------- ensemble verdicts snapshot


def _ensemble_case():
    """24 pairs on 8 prompts, one human tie, three members of different quality (deterministic)."""
    rng = np.random.default_rng(11)
    n = 24
    d = rng.normal(size=n) * 1.5
    label = (d + rng.logistic(size=n) > 0).astype(float)
    label[5] = 0.5
    C = np.stack([d + rng.normal(size=n) * s for s in (0.7, 1.5, 1.0)], axis=1)
    pairs = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [f"question {i // 3}" for i in range(n)],
            "chosen": [f"good {i}" for i in range(n)],
            "rejected": [f"bad {i}" for i in range(n)],
            "label": label,
        }
    )
    return C, np.zeros_like(C), pairs


def _plain(verdict) -> dict:
    """A verdict as a dict; floats to 12 significant digits, NaN as "nan" (so == compares them)."""
    out = {}
    for k, x in asdict(verdict).items():
        if isinstance(x, float):
            x = "nan" if math.isnan(x) else float(f"{x:.12g}")
        out[k] = x
    return out


def test_ensemble_verdicts_match_the_snapshot():
    """The verdicts of :meth:`EnsembleResult.verdicts`, frozen before its five checks became one table."""
    C, R, pairs = _ensemble_case()
    results = {
        "three_audited_a": ensemble_pairs((C, R), pairs, names=["a", "b", "c"], n_boot=60, seed=1, audited="a"),
        "two_audited_b": ensemble_pairs((C[:, :2], R[:, :2]), pairs, names=["a", "b"], n_boot=60, seed=2, audited="b"),
        "none_no_boot": ensemble_pairs((C, R), pairs, names=["a", "b", "c"], n_boot=0, audited=None),
    }
    got = {k: [_plain(v) for v in r.verdicts()] for k, r in results.items()}
    assert list(got) == list(ENSEMBLE_SNAPSHOT)
    for key, verdicts in got.items():
        assert len(verdicts) == len(ENSEMBLE_SNAPSHOT[key]), key
        for i, (g, want) in enumerate(zip(verdicts, ENSEMBLE_SNAPSHOT[key])):
            assert g == want, f"{key}[{i}]"


ENSEMBLE_SNAPSHOT = {
    "three_audited_a": [
        {
            "section": "ensemble",
            "check": "audited accuracy minus the other members'",
            "value": -0.152174,
            "threshold": "warn < -0.12, fail < -0.2 (95% interval)",
            "verdict": "inconclusive",
            "detail": "accuracy 0.478 vs other members' mean 0.630 the estimate sits close to the warn "
            "margin: more than 10x the current 8 prompts would be needed to settle it",
            "family": "ensemble",
            "ci_low": -0.273864,
            "ci_high": -0.043478,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.12,
            "fail": -0.2,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 103,
            "sentence": "a ranks 48% of pairs as the annotators do; the other members (b, c) average 63%: "
            "a difference of -15 points (95% CI -27 to -4; 24 pairs, 8 prompts).",
            "primary": True,
        },
        {
            "section": "ensemble",
            "check": "audited accuracy minus the ensemble mean's",
            "value": -0.043478,
            "threshold": "warn < -0.12, fail < -0.2 (95% interval)",
            "verdict": "inconclusive",
            "detail": "shown, not primary: averaging gains a few points even among equally good members "
            "about 34 prompts would settle it",
            "family": "ensemble",
            "ci_low": -0.184091,
            "ci_high": 0.127853,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.12,
            "fail": -0.2,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 34,
            "sentence": "Averaging a with the other members would change accuracy from 48% to 52%: a is -4 "
            "points against the ensemble mean (95% CI -18 to +13; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "audited agreement with the other members",
            "value": 0.75,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "pass",
            "detail": "sign of the audited margin vs the sign of the other members' mean margin",
            "family": "ensemble",
            "ci_low": 0.625,
            "ci_high": 0.896875,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "a prefers the same response as the other members on 75% of pairs (95% CI 62% to "
            "90%; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "disagreement predicts the audited model's mistakes (AUROC)",
            "value": 0.606061,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "inconclusive",
            "detail": "std of member margins as a flag for the audited model's errors the estimate sits "
            "close to the warn margin: more than 10x the current 8 prompts would be needed to "
            "settle it",
            "family": "ensemble",
            "ci_low": 0.366856,
            "ci_high": 0.818285,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 11097,
            "sentence": "The members' disagreement ranks the pairs a gets wrong above those it gets right "
            "with AUROC 0.61 (95% CI 0.37 to 0.82; 0.5 = no signal; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "mean aggregator minus the best member (accuracy)",
            "value": -0.130435,
            "threshold": "warn < -0.05, fail < -0.1 (95% interval)",
            "verdict": "warn",
            "detail": "mean 0.522, best member 0.652",
            "family": "ensemble",
            "ci_low": -0.333333,
            "ci_high": 0.023864,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.05,
            "fail": -0.1,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "The ensemble mean ranks 52% of pairs correctly, -13 points against the best "
            "member c (95% CI -33 to +2; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "disagreement predicts the ensemble's mistakes (AUROC)",
            "value": 0.666667,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "inconclusive",
            "detail": "disagreement rate 0.542 the estimate sits close to the warn margin: more than 10x "
            "the current 8 prompts would be needed to settle it",
            "family": "ensemble",
            "ci_low": 0.386875,
            "ci_high": 0.857143,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 100,
            "sentence": "The members' disagreement ranks the pairs the ensemble mean gets wrong above "
            "those it gets right with AUROC 0.67 (95% CI 0.39 to 0.86; 0.5 = no signal; 24 "
            "pairs, 8 prompts).",
            "primary": False,
        },
    ],
    "two_audited_b": [
        {
            "section": "ensemble",
            "check": "audited accuracy minus the other members'",
            "value": 0.130435,
            "threshold": "warn < -0.12, fail < -0.2 (95% interval)",
            "verdict": "pass",
            "detail": "accuracy 0.609 vs other members' mean 0.478",
            "family": "ensemble",
            "ci_low": 0.0,
            "ci_high": 0.309545,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.12,
            "fail": -0.2,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "b ranks 61% of pairs as the annotators do; the other member (a) ranks 48%: a "
            "difference of +13 points (95% CI +0 to +31; 24 pairs, 8 prompts).",
            "primary": True,
        },
        {
            "section": "ensemble",
            "check": "audited accuracy minus the ensemble mean's",
            "value": 0.086957,
            "threshold": "warn < -0.12, fail < -0.2 (95% interval)",
            "verdict": "pass",
            "detail": "shown, not primary: averaging gains a few points even among equally good members",
            "family": "ensemble",
            "ci_low": 0.0,
            "ci_high": 0.191984,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.12,
            "fail": -0.2,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "Averaging b with the other members would change accuracy from 61% to 52%: b is +9 "
            "points against the ensemble mean (95% CI +0 to +19; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "audited agreement with the other members",
            "value": 0.666667,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "inconclusive",
            "detail": "sign of the audited margin vs the sign of the other members' mean margin about 34 "
            "prompts would settle it",
            "family": "ensemble",
            "ci_low": 0.541667,
            "ci_high": 0.813542,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 34,
            "sentence": "b prefers the same response as the other members on 67% of pairs (95% CI 54% to "
            "81%; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "disagreement predicts the audited model's mistakes (AUROC)",
            "value": 0.492063,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "warn",
            "detail": "std of member margins as a flag for the audited model's errors",
            "family": "ensemble",
            "ci_low": 0.232292,
            "ci_high": 0.770455,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "The members' disagreement ranks the pairs b gets wrong above those it gets right "
            "with AUROC 0.49 (95% CI 0.23 to 0.77; 0.5 = no signal; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "mean aggregator minus the best member (accuracy)",
            "value": -0.086957,
            "threshold": "warn < -0.05, fail < -0.1 (95% interval)",
            "verdict": "inconclusive",
            "detail": "mean 0.522, best member 0.609 about 54 prompts would settle it",
            "family": "ensemble",
            "ci_low": -0.191984,
            "ci_high": 0.0,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.05,
            "fail": -0.1,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 54,
            "sentence": "The ensemble mean ranks 52% of pairs correctly, -9 points against the best member b "
            "(95% CI -19 to +0; 24 pairs, 8 prompts).",
            "primary": False,
        },
        {
            "section": "ensemble",
            "check": "disagreement predicts the ensemble's mistakes (AUROC)",
            "value": 0.515152,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "inconclusive",
            "detail": "disagreement rate 0.333 about 64 prompts would settle it",
            "family": "ensemble",
            "ci_low": 0.26747,
            "ci_high": 0.745573,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": 64,
            "sentence": "The members' disagreement ranks the pairs the ensemble mean gets wrong above those "
            "it gets right with AUROC 0.52 (95% CI 0.27 to 0.75; 0.5 = no signal; 24 pairs, 8 "
            "prompts).",
            "primary": False,
        },
    ],
    "none_no_boot": [
        {
            "section": "ensemble",
            "check": "mean aggregator minus the best member (accuracy)",
            "value": -0.130435,
            "threshold": "warn < -0.05, fail < -0.1 (95% interval)",
            "verdict": "n/a",
            "detail": "mean 0.522, best member 0.652",
            "family": "ensemble",
            "ci_low": None,
            "ci_high": None,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": -0.05,
            "fail": -0.1,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "The ensemble mean ranks 52% of pairs correctly, -13 points against the best member c "
            "(95% CI +nan to +nan; 24 pairs, 8 prompts).",
            "primary": True,
        },
        {
            "section": "ensemble",
            "check": "disagreement predicts the ensemble's mistakes (AUROC)",
            "value": 0.666667,
            "threshold": "warn < 0.6, fail < 0.5 (95% interval)",
            "verdict": "n/a",
            "detail": "disagreement rate 0.542",
            "family": "ensemble",
            "ci_low": None,
            "ci_high": None,
            "ci_level": 0.95,
            "direction": "lower",
            "warn": 0.6,
            "fail": 0.5,
            "n": 24,
            "n_clusters": 8,
            "cluster_unit": "prompt",
            "clusters_needed": None,
            "sentence": "The members' disagreement ranks the pairs the ensemble mean gets wrong above those "
            "it gets right with AUROC 0.67 (95% CI nan to nan; 0.5 = no signal; 24 pairs, 8 "
            "prompts).",
            "primary": True,
        },
    ],
}


# --------------------------------------------------------------------------- segment ids of pair-style scoring

PAIR_PROMPTS = ["What is 2+2?", "Tell me about Paris.", "hi", "a literal [SEP] inside the prompt"]
PAIR_RESPONSES = [
    "It is 4.",
    "Paris is the capital of France and a big city with many museums, cafes and parks.",
    "Hello there! " * 8,
    "def add(a, b):\n    return a + b",
]


def _direct_scores(path, pairs, **tok_kwargs) -> list[float]:
    """Plain transformers, one unpadded pair at a time, with the tokenizer's full output (segment ids too)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    with torch.no_grad():
        for p, r in pairs:
            enc = tok(p, r, return_tensors="pt", **tok_kwargs)
            assert enc["token_type_ids"].max() == 1  # the tokenizer does mark the response
            out.append(float(model(**enc).logits[0, 0]))
    return out


def test_bert_pair_scores_pass_the_tokenizers_segment_ids(tiny_models):
    from workbench.models import load_reward_model, score_texts

    pairs = list(zip(PAIR_PROMPTS, PAIR_RESPONSES))
    rm = load_reward_model(str(tiny_models["bert"]), format_style="pair")
    got = score_texts(rm, PAIR_PROMPTS, PAIR_RESPONSES, cache=None, progress=False, max_batch_size=4).scores
    want = _direct_scores(tiny_models["bert"], pairs)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # one at a time (no padding) gives the same scores
    np.testing.assert_allclose(rm.score_items([(p, r, None) for p, r in pairs]), want, atol=1e-4)
    # the segment ids matter: without them (all 0, the old behaviour) the scores differ
    ids = [rm.encode(rm.format(p, r))[0] for p, r in pairs]
    zeros = rm.forward_ids([list(i) for i in ids])
    assert np.abs(zeros - np.asarray(want)).max() > 1e-3
    # truncated pairs keep the tokenizer's segment ids too (longest_first, from the left)
    short = load_reward_model(str(tiny_models["bert"]), format_style="pair", max_length=16)
    res = score_texts(short, PAIR_PROMPTS, PAIR_RESPONSES, cache=None, progress=False)
    assert res.truncated.sum() >= 2
    want_short = _direct_scores(tiny_models["bert"], pairs, truncation="longest_first", max_length=16)
    np.testing.assert_allclose(res.scores, want_short, atol=1e-4)


def test_segment_ids_only_for_text_pairs_and_they_survive_pickling(tiny_models):
    import pickle

    from workbench.models import load_reward_model
    from workbench.models.adapters import SegmentedIds

    template = load_reward_model(str(tiny_models["bert"]))
    assert type(template.encode(template.format("q", "r"))[0]) is list  # one text: plain ids, as before
    pair = load_reward_model(str(tiny_models["bert"]), format_style="pair")
    ids = pair.encode(pair.format("What is 2+2?", "It is 4."))[0]
    assert isinstance(ids, SegmentedIds)
    back = pickle.loads(pickle.dumps(ids))  # Ray workers and process pools receive pickled ids
    assert back == ids and back.token_type_ids == ids.token_type_ids
    # pair scores of models with segment embeddings get a new cache identity (cached ones lacked the ids);
    # models without segment embeddings (DeBERTa-v2 with type_vocab_size=0) keep theirs
    for arch, changed in [("bert", True), ("deberta", False)]:
        rm = load_reward_model(str(tiny_models[arch]), format_style="pair")
        before = [json.dumps(rm.formatter.describe(), sort_keys=True), f"max_length={rm.max_length}", "trunc=left"]
        assert (rm.fingerprint != folder_fingerprint(tiny_models[arch], before)) is changed, arch


def test_segment_ids_are_padded_with_zero_on_the_padding_side(tiny_models):
    """A decoder (GPT-2 takes token_type_ids) padded on the left: each row scores as it does alone."""
    import torch

    from workbench.models import load_reward_model
    from workbench.models.adapters import SegmentedIds

    rm = load_reward_model(str(tiny_models["gpt2"]))
    texts = [("hello there", "fine thanks"), ("a much longer first segment of text", "ok")]
    batch = []
    for a, b in texts:
        enc = rm.tokenizer(a, b)
        n_a = len(rm.tokenizer(a)["input_ids"])
        batch.append(SegmentedIds(enc["input_ids"], [0] * n_a + [1] * (len(enc["input_ids"]) - n_a)))
    want = []
    with torch.no_grad():
        for ids in batch:
            out = rm.model(input_ids=torch.tensor([list(ids)]), token_type_ids=torch.tensor([ids.token_type_ids]))
            want.append(float(out.logits[0, 0]))
    for side in ("left", "right"):
        np.testing.assert_allclose(rm.forward_ids(batch, padding_side=side), want, atol=1e-4)
    assert abs(rm.forward_ids([list(batch[0])])[0] - want[0]) > 1e-4  # the segment ids reached the model


def test_pipeline_log_writes_each_line_in_one_call(monkeypatch):
    """With --jobs N, notebooks log from several threads: a line written in two calls (text, then the
    newline) can be split by another thread's line, so each line must reach the stream in one write."""
    import sys
    import threading

    from workbench.reports.pipeline import log

    class Recorder:
        def __init__(self):
            self.writes, self.lock = [], threading.Lock()

        def write(self, text):
            with self.lock:
                self.writes.append(text)
            return len(text)

        def flush(self):
            pass

    stream = Recorder()
    monkeypatch.setattr(sys, "stdout", stream)
    threads = [threading.Thread(target=log, args=(f"notebook {i}: ok",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = [w for w in stream.writes if w]
    assert sorted(lines) == sorted(f"[workbench] notebook {i}: ok\n" for i in range(8))
