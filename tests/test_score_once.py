"""Score once: the parent scores every pair set once, notebooks read the cache without loading weights; exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from notebook_helpers import make_notebook

from workbench.cli import main
from workbench.models import ScoreCache, load_reward_model, score_pairs
from workbench.models.distributed import OUTPUT_COLUMNS
from workbench.reports.pipeline import plan_audit, prescore, prescore_jobs, rewardbench_results, run_audit


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
    make_notebook(nbdir / "04_sycophancy.ipynb", 'model = ""  # RM\ndata = "shipped"  # items', "pass")
    plan = plan_audit(str(tiny_models["bert"]), str(pairs), notebook_dir=nbdir)
    jobs = prescore_jobs(plan)
    assert [(j.data, j.notebooks) for j in jobs] == [(str(pairs), ["00_overview", "01_calibration"])]
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
