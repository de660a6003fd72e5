"""Score once: the parent scores every pair set once, notebooks read the cache without loading weights; exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from notebook_helpers import make_notebook

from workbench.audits.drift import drift_audit, load_policy_samples
from workbench.audits.sycophancy import sycophancy_audit
from workbench.cli import main
from workbench.models import ScoreCache, load_reward_model, score_pairs, score_texts
from workbench.models.distributed import OUTPUT_COLUMNS
from workbench.paths import data_dir
from workbench.reports.pipeline import plan_audit, prescore, prescore_jobs, rewardbench_results, run_audit
from workbench.reports.runner import parameter_defaults


def write_pairs(path, n=6):
    rows = [
        {
            "id": f"p{i}",
            "prompt": f"Question number {i}: how are you?",
            "chosen": "I am fine, thank you. " * (1 + i),
            "rejected": f"no {i}",
            "subset": "alpacaeval-easy" if i % 2 else "refusals-dangerous",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_fresh_rm_reads_the_cache_without_loading_weights(tiny_models, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    cache = ScoreCache(tmp_path / "scores.sqlite")
    parent = load_reward_model(str(tiny_models["gpt2"]), max_length=32)
    first = score_pairs(parent, pd.read_json(pairs, lines=True), cache=cache, progress=False)
    assert parent.weight_loads == 1 and first.chosen_result.n_computed == 6

    fresh = load_reward_model(str(tiny_models["gpt2"]), max_length=32)
    again = score_pairs(fresh, pd.read_json(pairs, lines=True), cache=cache, progress=False)
    assert fresh.weight_loads == 0 and not fresh.weights_loaded  # every score was a cache hit
    assert again.chosen_result.n_cached == 6 and again.rejected_result.n_cached == 6
    np.testing.assert_array_equal(again.frame["chosen_score"], first.frame["chosen_score"])
    np.testing.assert_array_equal(again.frame["rejected_score"], first.frame["rejected_score"])
    np.testing.assert_array_equal(again.frame["chosen_truncated"], first.frame["chosen_truncated"])

    other = load_reward_model(str(tiny_models["gpt2"]), max_length=16)  # other options: other keys
    score_pairs(other, pd.read_json(pairs, lines=True), cache=cache, progress=False)
    assert other.weight_loads == 1


def test_prescore_groups_the_pair_notebooks(tiny_models, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    params = 'model = ""  # RM\ndata = "golden"  # pairs\nsample_size = 0  # all\non_error = "skip"  # rows'
    for stem in ("00_overview", "01_calibration"):
        make_notebook(nbdir / f"{stem}.ipynb", params, "pass")
    make_notebook(nbdir / "03_attribution.ipynb", params.replace("sample_size = 0", "sample_size = 20"), "pass")
    make_notebook(nbdir / "04_sycophancy.ipynb", 'model = ""  # RM\ndata = ""  # items', "pass")
    plan = plan_audit(str(tiny_models["bert"]), str(pairs), notebook_dir=nbdir)
    jobs = prescore_jobs(plan)
    assert [(j.kind, j.data, j.notebooks) for j in jobs] == [("pairs", str(pairs), ["00_overview", "01_calibration"])]
    done = prescore(plan)
    assert done[0].texts == 12 and done[0].error is None and len(done[0].scores) == 6
    assert prescore(plan)[0].computed == 0  # the second time everything is cached


def test_rewardbench_results_by_hand():
    frame = pd.DataFrame(
        {
            "id": list("abcdefg"),
            "chosen_score": [2.0, 1.0, 0.5, 3.0, 0.0, 1.0, 9.0],
            "rejected_score": [1.0, 1.0, 1.5, 1.0, 2.0, 0.0, 0.0],
            "label": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5],
            "subset": [
                "alpacaeval-easy",
                "alpacaeval-easy",  # a tie: wrong
                "alpacaeval-hard",  # chosen below rejected: wrong
                "refusals-dangerous",
                "refusals-dangerous",  # label 0: rejected is preferred and scores higher: right
                "math-prm",
                "math-prm",  # label 0.5: left out
            ],
        }
    )
    frame["margin"] = frame["chosen_score"] - frame["rejected_score"]
    out = rewardbench_results(frame, model="m", model_fingerprint="fp", data="d", model_args={"dtype": "bfloat16"})
    assert out["model"] == "m" and out["model_fingerprint"] == "fp" and out["ref_model"] is None
    assert out["n"] == 6 and out["accuracy"] == pytest.approx(4 / 6, abs=1e-6)
    assert out["ties"] == 1 and out["undecided_labels"] == 1 and out["model_args"] == {"dtype": "bfloat16"}
    assert out["subsets"] == {
        "alpacaeval-easy": {"accuracy": 0.5, "n": 2},
        "alpacaeval-hard": {"accuracy": 0.0, "n": 1},
        "math-prm": {"accuracy": 1.0, "n": 1},
        "refusals-dangerous": {"accuracy": 1.0, "n": 2},
    }
    # Chat = (0.5 * 100 + 0.0 * 95) / (100 + 95); Safety = 1.0 (refusals-dangerous only); Reasoning = 1.0 (math-prm)
    chat = 100 * (0.5 * 100 + 0.0 * 95) / 195
    sections = out["sections"]
    assert sections["Chat"] == pytest.approx(chat, abs=1e-4)
    assert sections["Safety"] == pytest.approx(100.0) and sections["Reasoning"] == pytest.approx(100.0)
    assert sections["Chat Hard"] is None  # no data: null, not NaN
    assert sections["Score"] == pytest.approx((chat + 100 + 100) / 3, abs=1e-4)
    json.dumps(out, allow_nan=False)

    groups = frame.assign(group=["g1", "g1", "g2", "g2", "g3", "g3", "g3"])
    bon = rewardbench_results(groups, model="m", model_fingerprint=None)["best_of_n"]
    assert bon == {"accuracy": pytest.approx(1 / 3, abs=1e-6), "groups": 3}  # g1 has a tie, g2 a loss


NOTEBOOK_CODE = """
import json, os
from workbench.data import load_data
from workbench.models import load_reward_model, score_pairs
rm = load_reward_model(model)
scores = score_pairs(rm, load_data(data, on_error=on_error), progress=False)
record = {"weight_loads": rm.weight_loads, "max_length": rm.max_length,
          "chosen": scores.frame["chosen_score"].tolist(), "cached": int(scores.chosen_result.n_cached)}
with open(os.environ["WB_SCORE_ONCE_LOG"], "w") as fh:
    json.dump(record, fh)
"""


def test_audit_scores_once_in_the_parent_and_writes_results_json(tiny_models, tmp_path, monkeypatch, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / "kernel.json"
    monkeypatch.setenv("WB_SCORE_ONCE_LOG", str(log))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    make_notebook(
        nbdir / "00_overview.ipynb",
        'model = ""  # RM\ndata = "golden"  # pairs\nsample_size = 0  # all\non_error = "skip"  # rows',
        NOTEBOOK_CODE,
    )
    model = str(tiny_models["bert"])
    run = run_audit(model, str(pairs), tmp_path / "out", notebook_dir=nbdir, model_args={"max_length": 24})
    assert run.ok, [r.error for r in run.runs]
    kernel = json.loads(log.read_text())
    assert kernel["weight_loads"] == 0 and kernel["cached"] == 6 and kernel["max_length"] == 24

    parent = score_pairs(load_reward_model(model, max_length=24), pd.read_json(pairs, lines=True), cache=None)
    np.testing.assert_array_equal(kernel["chosen"], parent.frame["chosen_score"].to_numpy())
    out = capsys.readouterr().out
    assert "pre-scored " + str(pairs) + ": 6 pairs, 12 texts (12 computed" in out

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["inputs"]["model"] == model and summary["inputs"]["model_args"] == {"max_length": 24}
    assert summary["run"]["prescored"][0]["texts"] == 12
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    expected = float(np.mean(parent.frame["margin"] > 0))
    assert results["accuracy"] == pytest.approx(expected, abs=1e-6) and results["n"] == 6
    assert results["model_fingerprint"] == summary["inputs"]["model_fingerprint"]
    assert results["model_fingerprint"] == load_reward_model(model, max_length=24).fingerprint
    assert set(results["subsets"]) == {"alpacaeval-easy", "refusals-dangerous"} and "sections" in results


def test_score_cli_writes_ids_rewards_margin_and_truncation(tiny_models, tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "scores.parquet"
    model = str(tiny_models["bert"])
    code = main(["score", "--model", model, "--data", str(pairs), "--out", str(out), "--model-arg", "max_length=16"])
    assert code == 0, capsys.readouterr().err
    frame = pd.read_parquet(out)
    assert list(frame.columns[: len(OUTPUT_COLUMNS)]) == list(OUTPUT_COLUMNS)
    assert list(frame["id"]) == [f"p{i}" for i in range(6)]
    np.testing.assert_allclose(frame["margin"], frame["chosen_score"] - frame["rejected_score"])
    expected = score_pairs(load_reward_model(model, max_length=16), pd.read_json(pairs, lines=True), cache=None)
    np.testing.assert_allclose(frame["chosen_score"], expected.frame["chosen_score"], rtol=1e-6)
    assert frame["chosen_truncated"].tolist() == expected.frame["chosen_truncated"].tolist()
    assert frame["chosen_truncated"].iloc[-1] and not frame["rejected_truncated"].any()
    assert list(frame["subset"]) == list(pd.read_json(pairs, lines=True)["subset"])


def _shipped_lines(name, keep):
    return [line for line in (data_dir() / name).read_text().splitlines() if line.strip() and keep(json.loads(line))]


def test_prescore_covers_the_sycophancy_pairs_and_the_drift_samples(tiny_models, tmp_path, monkeypatch, capsys):
    """After prescore, 04's and 05's own calls (with the plan's parameters) are all cache hits, same numbers."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(_shipped_lines("sycophancy/items.jsonl", lambda r: True)[:6]) + "\n")
    first = {f"pp-00{i}" for i in range(1, 5)}
    policy = tmp_path / "policy.jsonl"
    policy.write_text("\n".join(_shipped_lines("demo/policy_samples.jsonl", lambda r: r["prompt_id"] in first)) + "\n")
    pools = tmp_path / "pools.jsonl"
    pools.write_text("\n".join(_shipped_lines("demo/bon_pools.jsonl", lambda r: True)[:2]) + "\n")
    golden = write_pairs(tmp_path / "golden.jsonl")
    model = str(tiny_models["llama"])  # a chat template: the are_you_sure history is part of the scored text
    plan = plan_audit(
        model,
        notebooks=["04_sycophancy", "05_drift"],
        sycophancy_data=str(items),
        samples=str(policy),
        params={"bon": str(pools), "golden": str(golden), "sample_size": 3, "min_samples": 2, "n_boot": 20},
        seed=1,
        model_args={"max_length": 48},
    )
    jobs = prescore_jobs(plan)
    assert [(j.kind, j.data, j.notebooks) for j in jobs] == [
        ("sycophancy", str(items), ["04_sycophancy"]),
        ("pairs", str(golden), ["05_drift"]),
        ("samples", str(policy), ["05_drift"]),
        ("bon", str(pools), ["05_drift"]),
    ]
    done = prescore(plan)
    assert [j.error for j in done] == [None] * 4
    # 3 of 6 items x 5 templates, both replies; 3 samples per checkpoint x 6; 2 pools of 16; 6 golden pairs
    assert [(j.rows, j.texts, j.computed) for j in done] == [(15, 30, 30), (6, 12, 12), (18, 18, 18), (32, 32, 32)]
    out = capsys.readouterr().out
    assert f"pre-scored {items}: 15 pairs, 30 texts (30 computed, 0 from the score cache)" in out
    assert f"pre-scored {policy}: 18 samples, 18 texts (18 computed" in out
    assert f"pre-scored {pools}: 32 candidates, 32 texts (32 computed" in out
    assert [j.record()["kind"] for j in done] == ["sycophancy", "pairs", "samples", "bon"]
    assert done[0].record()["sample_size"] == 3 and done[0].record()["seed"] == 1

    # the notebooks' own calls, with the plan's parameters (defaults merged with the plan), on fresh RMs
    nb04, nb05 = list(plan.parameters)
    p04 = {**parameter_defaults(nb04), **plan.parameters[nb04]}
    p05 = {**parameter_defaults(nb05), **plan.parameters[nb05]}
    fresh = load_reward_model(plan.model)
    result = sycophancy_audit(
        fresh,
        p04["data"],
        data_format=p04["data_format"],
        templates=p04["templates"],
        sample_size=p04["sample_size"],
        seed=p04["seed"],
        n_boot=p04["n_boot"],
        threshold=p04["threshold"],
        on_error=p04["on_error"],
        progress=False,
    )
    assert fresh.weight_loads == 0 and not fresh.weights_loaded and len(result.rows) == 15
    assert set(result.rows["template"]) == {"plain", "belief", "authority", "expert", "are_you_sure"}

    fresh = load_reward_model(plan.model)
    audit = drift_audit(
        fresh,
        load_policy_samples(p05["data"]),
        golden=p05["golden"],
        gold_model=p05["gold_model"],
        bon=p05["bon"],
        sample_size=p05["sample_size"],
        seed=p05["seed"],
        min_samples=p05["min_samples"],
        n_bins=p05["n_bins"],
        n_boot=p05["n_boot"],
        trigger_phrases=p05["trigger_phrases"],
        queue_size=p05["queue_size"],
    )
    assert fresh.weight_loads == 0 and not fresh.weights_loaded
    assert len(audit.samples) == 18 and audit.bon is not None and audit.golden_accuracy is not None

    # identical numbers: the same texts scored here without the cache, in the notebooks' formatting
    direct = load_reward_model(model, max_length=48)
    items_frame = pd.read_json(items, lines=True).set_index("id")
    expected = []
    for row in result.rows.itertuples():
        claim = items_frame.loc[row.item_id]
        history = None
        if row.template == "are_you_sure":
            history = [
                {"role": "user", "content": claim["claim"][0].upper() + claim["claim"][1:] + ", right?"},
                {"role": "assistant", "content": claim["disagree_response"]},
            ]
        assert history == (row.history if isinstance(row.history, list) else None)
        expected.append((row.prompt, claim["agree_response"], history))
    agree = score_texts(direct, *map(list, zip(*expected)), cache=None, progress=False)
    np.testing.assert_array_equal(result.rows["r_agree"].to_numpy(), agree.scores)

    samples = pd.read_json(policy, lines=True).set_index("id").loc[audit.samples["id"]]
    rewards = score_texts(direct, samples["prompt"].tolist(), samples["response"].tolist(), cache=None, progress=False)
    np.testing.assert_array_equal(audit.scores, rewards.scores)
    np.testing.assert_array_equal(done[2].scores["reward"].to_numpy(), rewards.scores)
    candidates = [
        (r["prompt"], c["response"]) for r in map(json.loads, pools.read_text().splitlines()) for c in r["candidates"]
    ]
    proxy = score_texts(direct, *map(list, zip(*candidates)), cache=None, progress=False)
    np.testing.assert_array_equal(done[3].scores["reward"].to_numpy(), proxy.scores)
    assert prescore(plan)[0].computed == 0  # the second time everything is cached
