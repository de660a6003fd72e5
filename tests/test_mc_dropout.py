"""Tests for workbench.audits.ensemble.mc_dropout on tiny real transformers RMs and the demo RM.

The spread is exactly 0 with dropout off and positive with it on; every module's mode and
rate is restored, also after an error; the AUROCs equal sklearn's on the same arrays;
stochastic scores have their own cache keys (per seed and pass) and a repeat is served from
the cache without a forward pass; on the demo data the spread ranks demo-clean's errors.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from workbench.audits.ensemble import (  # noqa: E402
    MCDropoutResult,
    dropout_modules,
    ensemble_pairs,
    mc_dropout_audit,
    mc_dropout_pairs,
    mc_dropout_scores,
    mc_variant,
    pass_seed,
    stochastic_mode,
)
from workbench.audits.result import AuditResult  # noqa: E402
from workbench.data.relabel import QUEUE_COLUMNS, export_relabel_queue  # noqa: E402
from workbench.models import load_reward_model  # noqa: E402
from workbench.models.adapters import CallableRM  # noqa: E402
from workbench.models.cache import ScoreCache, score_key  # noqa: E402
from workbench.models.scoring import score_texts  # noqa: E402
from workbench.paths import data_dir  # noqa: E402

PROMPTS = [
    "What is the capital of France?",
    "How do I add two numbers in Python?",
    "When does water boil?",
    "Tell me something about foxes.",
    "Is this a good question?",
    "Where can I search for this?",
]
GOOD = [
    "The capital of France is Paris.",
    "def add(a, b):\n    return a + b",
    "Water boils at 100 degrees Celsius at sea level.",
    "The quick brown fox jumps over the lazy dog.",
    "Yes, it is a clear question.",
    "You could search online for that.",
]
BAD = [
    "You're absolutely right! Great question.",
    "I am not sure.",
    "Great question, I'd be happy to help.",
    "I am not sure, you could probably search online.",
    "The capital of France is Paris.",
    "Water boils at 100 degrees.",
]


def _pairs(k: int = 4) -> pd.DataFrame:
    """``6 * k`` pairs, ``k`` per prompt (so the bootstrap resamples 6 prompt clusters)."""
    rows = []
    for j in range(k):
        for i, p in enumerate(PROMPTS):
            c, r = GOOD[(i + j) % 6], BAD[(i + 2 * j) % 6]
            rows.append({"id": f"p{i}-{j}", "prompt": p, "chosen": c + " " * 0, "rejected": r, "label": 1.0})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def bert(tiny_models):
    return load_reward_model(str(tiny_models["bert"]))


def _modes(rm):
    return [(m.training, getattr(m, "p", None)) for m in rm.model.modules()]


def test_spread_is_zero_with_dropout_off_and_positive_with_it_on(bert):
    prompts, responses = PROMPTS, GOOD
    det = score_texts(bert, prompts, responses, cache=None, progress=False).scores
    off = mc_dropout_scores(bert, prompts, responses, passes=3, dropout=0.0, cache=None)
    assert off.rates == [0.0] and not off.dropout_active
    assert np.all(off.sd == 0.0)  # exactly: every pass gives the same numbers
    np.testing.assert_allclose(off.rewards, np.broadcast_to(det, off.rewards.shape), atol=1e-5)
    on = mc_dropout_scores(bert, prompts, responses, passes=3, cache=None)
    assert on.rates == [0.1] and on.n_dropout_modules == len(dropout_modules(bert)) > 0
    assert np.all(on.sd > 0)
    # reproducible: the same seed gives the same passes, another seed other ones
    again = mc_dropout_scores(bert, prompts, responses, passes=3, cache=None)
    np.testing.assert_array_equal(on.rewards, again.rewards)
    other = mc_dropout_scores(bert, prompts, responses, passes=3, seed=1, cache=None)
    assert not np.allclose(other.rewards, on.rewards)
    # pass seeds differ by pass and seed; the global torch RNG is left as it was
    assert len({pass_seed(0, 0), pass_seed(0, 1), pass_seed(1, 0)}) == 3
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mc_dropout_scores(bert, prompts, responses, passes=2, cache=None)
    assert torch.equal(torch.rand(3), expected)


def test_only_dropout_modules_are_switched_and_modes_are_restored(bert):
    layer_norm = next(m for m in bert.model.modules() if isinstance(m, torch.nn.LayerNorm))
    layer_norm.train()  # an odd starting state must come back as it was
    before = _modes(bert)
    try:
        with stochastic_mode(bert, dropout=0.3) as rates:
            assert rates == [0.3]
            for m in bert.model.modules():
                assert m.training == isinstance(m, torch.nn.Dropout)
                if isinstance(m, torch.nn.Dropout):
                    assert m.p == 0.3
        assert _modes(bert) == before
        # an error inside the passes (a non-string prompt) restores the modes and rates too
        with pytest.raises(TypeError, match="item 0: prompt and response must be strings"):
            mc_dropout_scores(bert, [1], ["x"], passes=2, dropout=0.5, cache=None)
        assert _modes(bert) == before
    finally:
        layer_norm.eval()
    assert not any(m.training for m in bert.model.modules())


def test_a_saved_rate_of_zero_and_a_model_without_dropout_modules(tiny_models, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_models["bert"])
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=1,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "bert0")
    tok.save_pretrained(tmp_path / "bert0")
    rm = load_reward_model(str(tmp_path / "bert0"))
    pairs = _pairs(1)
    zero = mc_dropout_pairs(rm, pairs, passes=2, n_boot=0, cache=None)
    assert zero.rates == [0.0] and np.all(zero.items["margin_sd"] == 0)
    assert any("rate 0" in n and "dropout=0.1" in n for n in zero.notes)
    assert not zero.responses["flagged"].any()  # zero spread flags nothing
    override = mc_dropout_pairs(rm, pairs, passes=2, dropout=0.1, n_boot=0, cache=None)
    assert override.rates == [0.1] and np.all(override.items["margin_sd"] > 0) and not override.notes
    # Llama applies attention dropout functionally: no Dropout module, so no spread, and a note says why
    llama = load_reward_model(str(tiny_models["llama"]))
    assert dropout_modules(llama) == []
    flat = mc_dropout_pairs(llama, pairs, passes=2, n_boot=0, cache=None)
    assert np.all(flat.items["margin_sd"] == 0) and "no torch.nn.Dropout module" in flat.notes[0]


def test_auroc_and_ensemble_comparison_equal_sklearn(bert, tiny_models, tmp_path):
    pairs = _pairs(4)
    pairs.loc[::5, "label"] = 0.0  # some pairs the other way round
    cache = ScoreCache(tmp_path / "scores.sqlite")
    res = mc_dropout_pairs(bert, pairs, passes=4, n_boot=200, cache=cache)
    assert isinstance(res, MCDropoutResult) and isinstance(res, AuditResult) and res.verdicts() == []
    it = res.items
    ok = it["mistake"].notna()
    y = it.loc[ok, "mistake"] == 1
    assert 0 < y.sum() < ok.sum()
    assert res.auroc == pytest.approx(roc_auc_score(y, it.loc[ok, "margin_sd"]), abs=1e-12)
    # the pair statistics are those of the passes' margins
    assert np.all(it["margin"] == it["chosen_reward"] - it["rejected_reward"])
    assert np.all((it["mistake"][ok] == 1) == ((it["margin"][ok] > 0) != (it["label"][ok] > 0.5)))
    lo, hi = res.auroc_ci
    assert lo <= res.auroc <= hi and res.n_clusters == 6 and res.cluster_unit == "prompt"
    # a signal whose interval includes 0.5 is named in a note with the pairs, mistakes and clusters behind it
    sig = res.signals.iloc[:3]
    undecided = sig.loc[(sig["ci_low"] <= 0.5) & (0.5 <= sig["ci_high"]), "signal"].str.split(" \\(").str[0]
    chance = [note for note in res.notes if "cannot tell that signal from chance" in note]
    assert len(undecided) > 0 and len(chance) == 1  # 24 pairs of a random tiny model: no signal is decided
    assert f"on these {int(ok.sum())} pairs ({int(y.sum())} mistakes, 6 prompts)" in chance[0]
    assert all(name in chance[0] for name in undecided)
    # the other signals: the share of passes against the deterministic sign, and -|margin| (no passes)
    n = len(pairs)
    mc = mc_dropout_scores(
        bert, list(pairs["prompt"]) * 2, list(pairs["chosen"]) + list(pairs["rejected"]), passes=4, cache=cache
    )
    assert sum(mc.n_computed) == 0  # the same passes, from the cache
    m = mc.rewards[:, :n] - mc.rewards[:, n:]
    np.testing.assert_allclose(it["margin_sd"], m.std(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(it["mean_margin"], m.mean(0), rtol=1e-12)
    np.testing.assert_array_equal(it["flip_rate"], (np.sign(m) != np.sign(it["margin"].to_numpy())).mean(0))
    signals = res.to_frame().set_index("signal")["auroc"]
    assert signals.iloc[1] == pytest.approx(roc_auc_score(y, it.loc[ok, "flip_rate"]), abs=1e-12)
    # the flip probability: Phi(-|mean| / sd) of the passes' margins, by scipy's normal CDF
    from scipy import stats as sstats

    z = np.abs(m.mean(0)) / m.std(0, ddof=1)
    np.testing.assert_allclose(it["flip_probability"], sstats.norm.cdf(-z), rtol=1e-9, atol=1e-15)
    assert signals.iloc[2] == pytest.approx(roc_auc_score(y, it.loc[ok, "flip_probability"]), abs=1e-12)
    assert signals.iloc[3] == pytest.approx(roc_auc_score(y, -it.loc[ok, "margin"].abs()), abs=1e-12)
    assert it["flip_rate"].between(0, 1).all()
    # the ensemble's disagreement for the same mistakes, on the same pairs
    ens = ensemble_pairs([bert, str(tiny_models["deberta"])], pairs, n_boot=0, cache=cache)
    cmp_ = mc_dropout_pairs(bert, pairs, passes=4, n_boot=200, ensemble=ens, cache=cache).comparison
    std = ens.items.set_index("id").loc[it.loc[ok, "id"], "std_margin"].to_numpy()
    rows = cmp_.set_index("signal")["auroc"]
    assert rows.iloc[0] == pytest.approx(res.auroc, abs=1e-12)
    assert tuple(cmp_[["ci_low", "ci_high"]].iloc[0]) == pytest.approx(res.auroc_ci)  # the same resamples
    assert rows.iloc[1] == pytest.approx(roc_auc_score(y, std), abs=1e-12)
    assert rows.iloc[2] == pytest.approx(rows.iloc[0] - rows.iloc[1], abs=1e-12)
    assert np.all(cmp_["ci_low"] <= cmp_["auroc"] + 1e-12) and np.all(cmp_["auroc"] <= cmp_["ci_high"] + 1e-12)
    # an ensemble on other pairs cannot be compared; the note says so
    other = pairs.assign(id=[f"x{i}" for i in range(len(pairs))])
    ens_other = ensemble_pairs([bert, str(tiny_models["deberta"])], other, n_boot=0, cache=cache)
    far = mc_dropout_pairs(bert, pairs, passes=2, n_boot=0, ensemble=ens_other, cache=cache)
    assert far.comparison.empty and "0 pairs are shared with the ensemble result" in far.notes[-1]
    with pytest.raises(TypeError, match="ensemble must be an EnsembleResult"):
        mc_dropout_pairs(bert, pairs, passes=2, ensemble=ens.items, cache=None)


def test_stochastic_scores_have_their_own_cache_keys_and_a_repeat_is_a_cache_hit(bert, tmp_path):
    cache = ScoreCache(tmp_path / "scores.sqlite")
    prompts, responses = PROMPTS, GOOD
    calls = []
    handle = bert.model.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        first = mc_dropout_scores(bert, prompts, responses, passes=3, cache=cache)
        assert first.n_computed == [6, 6, 6] and first.n_cached == [0, 0, 0] and calls
        assert len(cache) == 18  # one key per text and pass
        # deterministic scores do not collide with the stochastic ones
        det = score_texts(bert, prompts, responses, cache=cache, progress=False)
        assert det.n_cached == 0 and len(cache) == 24
        np.testing.assert_array_equal(det.scores, score_texts(bert, prompts, responses, cache=None).scores)
        assert not np.any(np.isin(first.rewards, det.scores))
        # a repeat is served from the cache: no forward pass, the same numbers
        calls.clear()
        again = mc_dropout_scores(bert, prompts, responses, passes=3, cache=cache)
        assert again.n_cached == [6, 6, 6] and again.n_computed == [0, 0, 0] and not calls
        np.testing.assert_array_equal(again.rewards, first.rewards)
        # more passes reuse the first ones; another seed or rate gets new keys
        more = mc_dropout_scores(bert, prompts, responses, passes=4, cache=cache)
        assert more.n_cached == [6, 6, 6, 0]
        np.testing.assert_array_equal(more.rewards[:3], first.rewards)
        assert mc_dropout_scores(bert, prompts, responses, passes=2, seed=1, cache=cache).n_cached == [0, 0]
        assert mc_dropout_scores(bert, prompts, responses, passes=2, dropout=0.2, cache=cache).n_cached == [0, 0]
    finally:
        handle.remove()
    # the key: the variant names the pass, the seed and the rate; the empty variant is the deterministic key
    text = "some text"
    assert score_key("fp", 128, text, "") == score_key("fp", 128, text)
    variants = {mc_variant(s, k, r) for s in (0, 1) for k in (0, 1) for r in ([0.1], [0.2])}
    assert len({score_key("fp", 128, text, v) for v in variants} | {score_key("fp", 128, text)}) == 9


def test_high_uncertainty_responses_and_the_relabel_queue(bert, tmp_path):
    res = mc_dropout_pairs(bert, _pairs(3), passes=3, n_boot=0, cache=None)
    r = res.responses
    flagged = res.high_uncertainty()
    assert len(flagged) == int(r["flagged"].sum()) > 0
    assert np.all(flagged["reward"] >= np.quantile(r["reward"], 0.75))
    assert np.all(flagged["reward_sd"] >= np.quantile(r["reward_sd"], 0.75))
    assert list(flagged["reward_sd"]) == sorted(flagged["reward_sd"], reverse=True)
    cand = res.relabel_candidates(5)
    assert len(cand) == min(5, flagged["id"].nunique()) and cand["reason"].str.startswith("MC dropout").all()
    queue = export_relabel_queue(cand, tmp_path / "relabel_queue_mc_dropout.csv", seed=0)
    assert list(queue.columns) == list(QUEUE_COLUMNS)
    margin = cand.set_index("id")["margin"]
    for _, row in queue.iterrows():
        sign = 1 if row["a_source"] == "chosen" else -1
        assert row["rm_margin"] == pytest.approx(sign * margin[row["source_id"]])
    fig = res.plot()
    assert len(fig.axes) == 2
    s = res.summary()
    assert s["passes"] == 3 and s["n_flagged_responses"] == len(flagged) and s["dropout_rates"] == "0.1"
    assert res.to_frame().loc[0, "auroc"] == res.auroc


def test_flip_probability_hand_values():
    from workbench.audits.ensemble.mc_dropout import flip_probability

    # |mean| / sd = 1 -> Phi(-1) = 0.158655; mean 0 -> 0.5; no spread -> 0 (or 0.5 at a zero mean)
    got = flip_probability([-2.0, 0.0, 1.0, 0.0], [2.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(got, [0.15865525393145707, 0.5, 0.0, 0.5], rtol=1e-12)


def test_bad_arguments_name_the_argument_and_what_to_do(bert):
    fn = CallableRM(lambda p, r: np.zeros(len(p)), name="constant", version="1")
    with pytest.raises(TypeError, match="'constant' is a CallableRM.*use an ensemble"):
        mc_dropout_scores(fn, ["p"], ["r"])
    with pytest.raises(ValueError, match="passes must be an integer >= 2"):
        mc_dropout_scores(bert, ["p"], ["r"], passes=1)
    with pytest.raises(ValueError, match=r"dropout must be None .* or a rate in \[0, 1\), got 1.5"):
        mc_dropout_scores(bert, ["p"], ["r"], dropout=1.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        mc_dropout_scores(bert, ["p"], ["r"], seed=-1)
    with pytest.raises(ValueError, match="spread_quantile must be a quantile"):
        mc_dropout_pairs(bert, _pairs(1), spread_quantile=1.0)


def test_mc_dropout_on_the_demo_rm_and_data(tmp_path):
    """demo-clean (a ValueHeadRM on frozen MiniLM, hidden dropout 0.1) on 150 held-out demo pairs, 4 passes.

    Dropout is active in the backbone, every pair gets a positive spread, the reported AUROCs are
    sklearn's on the items, and the MC-dropout flip probability ranks the demo RM's mistakes above
    chance (its interval excludes 0.5). The spread alone does not: on the frozen-backbone demo RMs it
    carries no clear information about the errors, and the flip probability's signal comes mostly
    from the margin's size (it stays below the ``-|margin|`` reference). Measured (seed 0, n_boot
    1000, topic-clustered 95% intervals):

    * this test's setting (150 pairs, 25 mistakes, 4 passes): margin SD 0.552 (0.448-0.666);
      sign-flip rate 0.591 (0.513-0.694); flip probability 0.684 (0.568-0.802); -|margin| 0.729
      (0.595-0.847); about 45 s on 2 idle cores;
    * 300 pairs (52 mistakes), 8 passes: margin SD 0.568 (0.473-0.657); sign-flip rate 0.799
      (0.723-0.870); -|margin| 0.828 (0.751-0.892);
    * demo-biased as it was before it read the reply's opening (mean pooling, weight decay 0.003),
      golden (260 pairs, 101 mistakes), 8 passes: margin SD 0.469 (0.397-0.541);
      sign-flip rate 0.557 (0.487-0.621); -|margin| 0.576 (0.496-0.642); the demo-clean +
      demo-biased ensemble's disagreement 0.602 (0.534-0.668), paired difference MC - ensemble
      -0.133 (-0.245 to -0.027).
    """
    res = mc_dropout_audit(
        str(data_dir() / "demo" / "eval.jsonl"),
        "demo-clean",
        passes=4,
        subsample=DEMO_PAIRS,
        n_boot=1000,
        cache=ScoreCache(tmp_path / "scores.sqlite"),
    )
    assert res.rates == [0.1] and res.n_dropout_modules > 0
    assert res.model["type"] == "ValueHeadRM" and len(res.items) == DEMO_PAIRS
    it = res.items
    assert np.all(it["margin_sd"] > 0) and np.all(it["chosen_reward_sd"] > 0)
    ok = it["mistake"].notna()
    y = it.loc[ok, "mistake"] == 1
    assert 0 < y.sum() < ok.sum()  # demo-clean gets some of these pairs wrong
    assert res.auroc == pytest.approx(roc_auc_score(y, it.loc[ok, "margin_sd"]), abs=1e-12)
    assert res.auroc_ci[0] <= res.auroc <= res.auroc_ci[1]
    flip = res.signals.iloc[2]
    assert flip["signal"].startswith("MC-dropout flip probability")
    assert flip["auroc"] == pytest.approx(roc_auc_score(y, it.loc[ok, "flip_probability"]), abs=1e-12)
    assert flip["ci_low"] > 0.5, res.to_frame().to_string()  # ranks the RM's errors above chance
    summary = res.summary()
    assert summary["auroc_flip_probability_vs_mistake_low"] == flip["ci_low"]


DEMO_PAIRS = 150
