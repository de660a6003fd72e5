"""Throughput of the scoring engine against simpler batching, in pairs per second.

Strategies compared on the same texts, each with the score cache off:

* ``engine``: length-sorted batches filled to a token budget (the default);
* ``per-example``: one text at a time;
* ``fixed-N``: batches of N texts in data order (what a plain DataLoader does);
* ``engine, warm cache``: a rerun of the engine with its cache filled.

CPU run (demo RM):             python benchmarks/scoring.py
GPU run (real RM architecture): python benchmarks/scoring.py --arch llama-8b --device cuda
``--arch`` builds a random-init sequence-classification model from a real RM
architecture's config (weights don't matter for speed) in bf16.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ARCHS = {
    # Llama-3.1-8B shapes (e.g. Skywork-Reward-Llama-3.1-8B)
    "llama-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
    ),
    # Llama-3.2-1B shapes, for a quick check
    "llama-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
    ),
}


def build_arch_rm(arch: str, device: str, layers: int | None):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from workbench.models import SequenceClassifierRM
    from workbench.paths import minilm_dir

    cfg = dict(ARCHS[arch])
    if layers:
        cfg["num_hidden_layers"] = layers
    tok = AutoTokenizer.from_pretrained(minilm_dir())  # any real tokenizer: ids fit the vocab
    config = LlamaConfig(num_labels=1, pad_token_id=tok.pad_token_id, **cfg)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForSequenceClassification(config).to(torch.bfloat16)
    return SequenceClassifierRM(model, tok, name=f"{arch}-random", device=device, dtype=torch.bfloat16, max_length=2048)


def load_texts(data: str, n_pairs: int, seed: int):
    from workbench.data import load_data

    pairs = load_data(data).sample(n_pairs, seed=seed).frame
    prompts = list(pairs["prompt"]) * 2
    responses = list(pairs["chosen"]) + list(pairs["rejected"])
    return prompts, responses, len(pairs)


def synthetic_texts(n_pairs: int, seed: int):
    """Responses of 20 to 700 words, log-uniform, like real RM eval sets' long tail."""
    rng = np.random.default_rng(seed)
    words = "the model answers questions about science history code and cooking with care".split()
    lengths = np.exp(rng.uniform(np.log(20), np.log(700), 2 * n_pairs)).astype(int)
    responses = [" ".join(rng.choice(words, n)) for n in lengths]
    return ["Explain this please."] * (2 * n_pairs), responses, n_pairs


def timed(rm, prompts, responses, n_pairs, repeats=1, **kwargs):
    from workbench.models import score_texts

    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = score_texts(rm, prompts, responses, progress=False, **kwargs)
        sync(rm)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return {
        "seconds": round(best, 3),
        "pairs_per_s": round(n_pairs / best, 2),
        "padding": round(result.padding_fraction, 3),
        "batches": result.n_batches,
    }, result


def sync(rm):
    import torch

    if getattr(rm, "device", None) is not None and rm.device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo-biased")
    ap.add_argument("--data", default="demo-eval", help="data spec, or 'synthetic' for long-tailed random texts")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--arch", choices=sorted(ARCHS), default=None)
    ap.add_argument("--layers", type=int, default=None, help="override the layer count of --arch")
    ap.add_argument("--device", default=None)
    ap.add_argument("--token-budget", type=int, default=16384)
    ap.add_argument("--fixed-batch", type=int, default=32)
    ap.add_argument("--skip-per-example", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from workbench.models import ScoreCache, load_reward_model, score_texts

    if args.arch:
        device = args.device or "cuda"
        rm = build_arch_rm(args.arch, device, args.layers)
    else:
        rm = load_reward_model(args.model, device=args.device)
    if args.data == "synthetic":
        prompts, responses, n_pairs = synthetic_texts(args.pairs, args.seed)
    else:
        prompts, responses, n_pairs = load_texts(args.data, args.pairs, args.seed)

    # Warm-up (kernels, allocator) on a few texts.
    score_texts(rm, prompts[:8], responses[:8], cache=None, progress=False)
    rows = {}
    rows["engine (length-sorted, token budget)"], ref = timed(
        rm, prompts, responses, n_pairs, cache=None, token_budget=args.token_budget
    )
    rows[f"fixed batches of {args.fixed_batch}, data order"], fixed = timed(
        rm, prompts, responses, n_pairs, cache=None, strategy="fixed", batch_size=args.fixed_batch
    )
    if not args.skip_per_example:
        rows["per-example loop"], single = timed(
            rm, prompts, responses, n_pairs, cache=None, strategy="fixed", batch_size=1
        )
        rows["per-example loop"]["max_abs_diff_vs_engine"] = float(np.abs(single.scores - ref.scores).max())
    rows[f"fixed batches of {args.fixed_batch}, data order"]["max_abs_diff_vs_engine"] = float(
        np.abs(fixed.scores - ref.scores).max()
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = ScoreCache(Path(tmp) / "bench.sqlite")
        rows["engine, cold cache (writes)"], _ = timed(
            rm, prompts, responses, n_pairs, cache=cache, token_budget=args.token_budget
        )
        rows["engine, warm cache"], _ = timed(
            rm, prompts, responses, n_pairs, cache=cache, token_budget=args.token_budget
        )

    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "model": rm.name,
        "dtype": str(rm.dtype),
        "data": args.data,
        "pairs": n_pairs,
        "texts": len(responses),
        "mean_tokens": float(np.mean(ref.n_tokens)),
        "max_tokens": int(np.max(ref.n_tokens)),
        "token_budget": args.token_budget,
        "torch": torch.__version__,
    }
    print(json.dumps(meta, indent=2))
    print("\n| strategy | seconds | pairs/s | padding share | batches | max abs diff vs engine |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        diff = r.get("max_abs_diff_vs_engine", "")
        diff = f"{diff:.1e}" if diff != "" else ""
        print(f"| {name} | {r['seconds']} | {r['pairs_per_s']} | {r['padding']} | {r['batches']} | {diff} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
