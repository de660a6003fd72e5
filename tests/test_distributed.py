"""Scoring at size: data-parallel devices, sharded loading, streaming to Parquet, Ray Data, the score CLI."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.models import CallableRM, ScoreCache, load_reward_model, score_pairs, score_texts
from workbench.models.distributed import iter_pair_chunks, score_to_parquet
from workbench.models.scoring import load_sharded, replicate, resolve_devices


def pairs_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = "the quick brown fox jumps over lazy dog water boils paris is the capital".split()

    def text(k):
        return " ".join(rng.choice(words, int(k)))

    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [f"Question {i}: {text(rng.integers(2, 8))}?" for i in range(n)],
            "chosen": [f"{i} " + text(rng.integers(1, 30)) for i in range(n)],
            "rejected": [f"{i}! " + text(rng.integers(1, 30)) for i in range(n)],
            "label": np.ones(n),
        }
    )


# --------------------------------------------------------------------------- devices


def test_resolve_devices():
    import torch

    assert resolve_devices(["cpu", "cpu"]) == ["cpu", "cpu"]
    assert resolve_devices("cuda:1") == ["cuda:1"]
    if not torch.cuda.is_available():
        assert resolve_devices("all") == ["cpu"]
        with pytest.raises(ValueError, match="devices=2: only 0 CUDA device"):
            resolve_devices(2)
    with pytest.raises(ValueError, match="devices is empty"):
        resolve_devices([])


def test_replicas_are_independent_copies_with_the_same_scores(tiny_models):
    rm = load_reward_model(str(tiny_models["gpt2"]))
    copy = replicate(rm, "cpu")
    assert copy.model is not rm.model and copy.tokenizer is rm.tokenizer
    # The decoder's score head is the copied model's own layer, not the original's.
    assert copy.per_position_head is copy.model.score and copy.per_position_head is not rm.per_position_head
    ids = [rm.encode(rm.format("q", r))[0] for r in ["a b c", "the quick brown fox"]]
    np.testing.assert_array_equal(copy.forward_ids(ids), rm.forward_ids(ids))


def test_data_parallel_workers_split_batches_and_share_the_cache(tiny_models, tmp_path):
    rm = load_reward_model(str(tiny_models["gpt2"]))
    frame = pairs_frame(20)
    prompts = list(frame["prompt"]) * 2
    responses = list(frame["chosen"]) + list(frame["rejected"])
    single = score_texts(rm, prompts, responses, cache=None, progress=False, max_batch_size=1)
    cache = ScoreCache(tmp_path / "c.sqlite")
    split = score_texts(rm, prompts, responses, cache=cache, progress=False, max_batch_size=1, devices=["cpu", "cpu"])
    np.testing.assert_allclose(split.scores, single.scores, atol=1e-6, rtol=0)
    # Two workers, each took batches from the shared queue; together they computed every text once.
    assert sorted(split.per_device) == ["0:cpu", "1:cpu"]
    assert sum(split.per_device.values()) == len(responses) and min(split.per_device.values()) > 0
    assert len(cache) == len(responses)
    again = score_texts(rm, prompts, responses, cache=cache, progress=False, devices=["cpu", "cpu"])
    assert again.n_cached == len(responses) and again.per_device == {}


def test_device_map_passthrough_gives_the_same_scores(tiny_models):
    pytest.importorskip("accelerate")
    path = str(tiny_models["llama"])
    sharded = load_sharded(path, device_map="auto")
    assert str(sharded.device) == "cpu"  # where the input embeddings are (no GPU here)
    plain = load_reward_model(path)
    frame = pairs_frame(6)
    a = score_texts(sharded, list(frame["prompt"]), list(frame["chosen"]), cache=None, progress=False)
    b = score_texts(plain, list(frame["prompt"]), list(frame["chosen"]), cache=None, progress=False)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5, rtol=0)
    assert sharded.fingerprint == plain.fingerprint


# --------------------------------------------------------------------------- streaming to Parquet (local engine)


def test_parquet_input_is_read_in_chunks_with_global_rows(tmp_path):
    frame = pairs_frame(23).drop(columns=["id"])
    path = tmp_path / "pairs.parquet"
    frame.to_parquet(path, row_group_size=5)
    chunks = list(iter_pair_chunks(str(path), chunk_pairs=10))
    assert [len(c) for c in chunks] == [10, 10, 3]
    rows = np.concatenate([c["_row"].to_numpy() for c in chunks])
    assert rows.tolist() == list(range(23))
    assert chunks[2]["id"].tolist() == ["row-20", "row-21", "row-22"]
    assert chunks[1]["chosen"].tolist() == frame["chosen"].iloc[10:20].tolist()


def test_local_stream_matches_score_pairs(tiny_models, tmp_path):
    path = str(tiny_models["gpt2"])
    frame = pairs_frame(30)
    data = tmp_path / "pairs.parquet"
    frame.to_parquet(data, row_group_size=7)
    reference = score_pairs(path, frame, cache=None, progress=False).frame
    out = tmp_path / "scores.parquet"
    result = score_to_parquet(path, str(data), out, cache=None, chunk_pairs=8)
    assert result.rows == 30 and result.rows_scored == 30 and result.texts_computed == 60
    got = pd.read_parquet(out)
    assert got["id"].tolist() == reference["id"].tolist()
    for col in ("chosen_score", "rejected_score", "margin", "label"):
        np.testing.assert_allclose(got[col], reference[col], atol=1e-5, rtol=0)
    assert not out.with_name(out.name + ".parts").exists()


def test_interrupted_local_stream_resumes_without_rescoring(tmp_path):
    frame = pairs_frame(30)
    calls = []

    def flaky(prompts, responses):
        calls.append(len(responses))
        if len(calls) == 3 and fail:
            raise KeyboardInterrupt
        return [float(len(r)) for r in responses]

    rm = CallableRM(flaky, fingerprint="flaky-v1")
    out = tmp_path / "s.parquet"
    fail = True
    with pytest.raises(KeyboardInterrupt):
        score_to_parquet(rm, frame, out, cache=None, chunk_pairs=8)
    parts = sorted(out.with_name("s.parquet.parts").glob("part-*.parquet"))
    assert [p.name for p in parts] == [
        "part-000000000000-000000000007.parquet",
        "part-000000000008-000000000015.parquet",
    ]
    fail = False
    calls.clear()
    result = score_to_parquet(rm, frame, out, cache=None, chunk_pairs=8)
    assert result.rows == 30 and result.rows_resumed == 16 and result.rows_scored == 14
    assert sum(calls) == 28  # only the 14 pairs without a part
    got = pd.read_parquet(out)
    assert got["id"].tolist() == frame["id"].tolist()
    np.testing.assert_allclose(got["margin"], [len(c) - len(r) for c, r in zip(frame["chosen"], frame["rejected"])])


def test_parts_of_another_run_are_refused(tiny_models, tmp_path):
    out = tmp_path / "s.parquet"
    parts = out.with_name("s.parquet.parts")
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"model": "other-rm", "model_kwargs": "{}", "data": "x"}))
    with pytest.raises(
        ValueError, match=r"s.parquet.parts: holds parts of an interrupted run with another data, model"
    ):
        score_to_parquet(str(tiny_models["gpt2"]), pairs_frame(3), out, cache=None)
    with pytest.raises(ValueError, match="must be a .parquet file"):
        score_to_parquet(str(tiny_models["gpt2"]), pairs_frame(3), tmp_path / "s.csv", cache=None)


def test_score_cli(tiny_models, tmp_path, capsys):
    frame = pairs_frame(12)
    data = tmp_path / "pairs.jsonl"
    frame.to_json(data, orient="records", lines=True)
    out = tmp_path / "scores.parquet"
    code = main(["score", "--model", str(tiny_models["gpt2"]), "--data", str(data), "--out", str(out), "--no-cache"])
    assert code == 0
    assert "12 pairs (12 scored now, 0 from an earlier run, 24 texts computed)" in capsys.readouterr().out
    reference = score_pairs(str(tiny_models["gpt2"]), frame, cache=None, progress=False).frame
    np.testing.assert_allclose(pd.read_parquet(out)["margin"], reference["margin"], atol=1e-5, rtol=0)
    code = main(["score", "--model", str(tiny_models["gpt2"]), "--data", str(data), "--out", str(tmp_path / "x.csv")])
    assert code == 2 and "--out must be a .parquet file" in capsys.readouterr().err


# --------------------------------------------------------------------------- Ray Data

COUNTING_RM = '''
import os
import time

def score(prompts, responses):
    """Counts the texts it scores (in a file shared by all workers) and fails on request."""
    log = os.environ["WB_COUNT_LOG"]
    with open(log, "a") as fh:
        fh.write(f"{len(responses)}\\n")
    limit = os.environ.get("WB_FAIL_FILE")
    if limit and os.path.exists(limit):
        with open(log) as fh:
            total = sum(int(x) for x in fh if x.strip())
        if total > int(open(limit).read()):
            time.sleep(1.5)  # dies a while later, when earlier results have reached the driver
            raise RuntimeError("injected failure: worker lost")
    return [len(r) + 0.01 * len(p) for p, r in zip(prompts, responses)]
'''


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    root = tmp_path_factory.mktemp("ray-rm")
    (root / "wb_counting_rm.py").write_text(textwrap.dedent(COUNTING_RM))
    env = {
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "WB_COUNT_LOG": str(root / "calls.log"),
        "WB_FAIL_FILE": str(root / "fail_after"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WORKBENCH_CACHE_DIR": os.environ["WORKBENCH_CACHE_DIR"],
    }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield root
    ray.shutdown()


def _calls(root) -> int:
    log = root / "calls.log"
    return sum(int(x) for x in log.read_text().split()) if log.exists() else 0


@pytest.mark.slow
def test_ray_engine_matches_local_engine_and_fills_the_cache(ray_cluster, tiny_models, tmp_path):
    path = str(tiny_models["gpt2"])
    frame = pairs_frame(40)
    reference = score_pairs(path, frame, cache=None, progress=False).frame
    cache = ScoreCache(tmp_path / "c.sqlite")
    out = tmp_path / "ray.parquet"
    result = score_to_parquet(path, frame, out, engine="ray", cache=cache, workers=2, batch_pairs=8, chunk_pairs=16)
    assert result.extra == {"actors": 2, "actor_device": "cpu"}
    assert result.rows == 40 and result.texts_computed == 80
    got = pd.read_parquet(out)
    assert got["id"].tolist() == reference["id"].tolist()
    for col in ("chosen_score", "rejected_score", "margin"):
        np.testing.assert_allclose(got[col], reference[col], atol=1e-5, rtol=0)
    # Every score reached the cache: the local engine now computes nothing.
    local = score_pairs(path, frame, cache=cache, progress=False)
    assert local.summary()["texts_computed"] == 0
    np.testing.assert_allclose(local.frame["margin"], got["margin"], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_interrupted_ray_run_resumes_without_rescoring(ray_cluster, tmp_path):
    root = ray_cluster
    frame = pairs_frame(48, seed=1)
    out = tmp_path / "resume.parquet"
    spec = "python:wb_counting_rm:score"
    (root / "calls.log").write_text("")
    (root / "fail_after").write_text("48")  # a worker dies after about half the texts
    with pytest.raises(Exception, match="injected failure"):
        score_to_parquet(spec, frame, out, engine="ray", cache=None, workers=1, batch_pairs=6, chunk_pairs=6)
    parts = out.with_name(out.name + ".parts")
    finished = sum(len(pd.read_parquet(p)) for p in parts.glob("part-*.parquet"))
    assert 0 < finished < 48 and not out.exists()
    (root / "fail_after").unlink()
    (root / "calls.log").write_text("")
    result = score_to_parquet(spec, frame, out, engine="ray", cache=None, workers=1, batch_pairs=6, chunk_pairs=6)
    assert result.rows_resumed == finished and result.rows_scored == 48 - finished
    assert _calls(root) == 2 * (48 - finished)  # finished pairs were not scored again
    got = pd.read_parquet(out)
    assert got["id"].tolist() == frame["id"].tolist()
    expected = [len(c) - len(r) for c, r in zip(frame["chosen"], frame["rejected"])]
    np.testing.assert_allclose(got["margin"], expected, atol=1e-9)
