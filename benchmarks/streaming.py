"""Streaming at size: synthetic pairs through ``score_to_parquet`` with the local engine and with Ray.

Each (engine, size) runs in a fresh Python process that reports its own peak RSS, so
memory growth with the size of the set is visible: the engines read the Parquet input
in chunks and write Parquet parts, so the driver should stay flat as pairs grow.

    python benchmarks/streaming.py                          # 10k, 30k, 100k pairs, local and ray
    python benchmarks/streaming.py --sizes 100000 --engines local --chunk-pairs 4096

On a shared CPU the local engine runs with one torch thread (``--torch-threads``), like
each 1-CPU Ray actor, because oversubscribed threads made it 6x slower there.

The RM is the tiny GPT-2 sequence classifier of the tests (2 layers, hidden size 32),
so the numbers measure the pipeline (reading, tokenizing, batching, writing, caching),
not a real RM's compute. Score caches are fresh for every run (nothing is cached).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = "the model answers questions about science history code and cooking with care".split()


def synthetic_pairs(path: Path, n: int, seed: int = 0) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.uniform(np.log(3), np.log(60), (2, n))).astype(int)
    frame = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "prompt": [f"Question {i}: explain {WORDS[i % len(WORDS)]}." for i in range(n)],
            "chosen": [f"{i} " + " ".join(rng.choice(WORDS, k)) for i, k in enumerate(lengths[0])],
            "rejected": [f"{i}. " + " ".join(rng.choice(WORDS, k)) for i, k in enumerate(lengths[1])],
        }
    )
    frame.to_parquet(path, row_group_size=8192)


def one_run(args) -> dict:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(args.torch_threads)  # Ray gives each 1-CPU actor one thread too
    from workbench.models import ScoreCache
    from workbench.models.distributed import score_to_parquet

    cache = ScoreCache(Path(args.work) / f"cache-{args.engine}-{args.pairs}.sqlite")
    out = Path(args.work) / f"scores-{args.engine}-{args.pairs}.parquet"
    start = time.perf_counter()
    result = score_to_parquet(
        args.model,
        args.data,
        out,
        engine=args.engine,
        cache=cache,
        chunk_pairs=args.chunk_pairs,
        workers=args.workers,
        batch_pairs=args.batch_pairs,
    )
    seconds = time.perf_counter() - start
    return {
        "engine": args.engine,
        "pairs": result.rows,
        "texts_computed": result.texts_computed,
        "seconds": round(seconds, 1),
        "pairs_per_s": round(result.rows / seconds, 1),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cache_mb": round(cache.path.stat().st_size / 2**20, 1),
        **result.extra,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--chunk-pairs", type=int, default=4096)
    ap.add_argument("--batch-pairs", type=int, default=1024, help="pairs per Ray actor call")
    ap.add_argument("--workers", type=int, default=2, help="Ray CPU actors")
    ap.add_argument("--torch-threads", type=int, default=1, help="torch threads of the local engine")
    ap.add_argument("--json", default=None)
    # internal: one run in this process
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--pairs", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(args)))
        return

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_models

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = str(build_tiny_models(tmp / "models")["gpt2"])
        for n in args.sizes:
            data = tmp / f"pairs-{n}.parquet"
            synthetic_pairs(data, n)
            for engine in args.engines:
                cmd = [sys.executable, __file__, "--one", "--engine", engine, "--pairs", str(n), "--model", model]
                cmd += ["--data", str(data), "--work", str(tmp), "--chunk-pairs", str(args.chunk_pairs)]
                cmd += ["--workers", str(args.workers), "--batch-pairs", str(args.batch_pairs)]
                cmd += ["--torch-threads", str(args.torch_threads)]
                load = os.getloadavg()[0]
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{engine} run with {n} pairs failed")
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                row["load_avg_1m_at_start"] = round(load, 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    import torch

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "chunk_pairs": args.chunk_pairs,
        "ray_workers": args.workers,
        "ray_batch_pairs": args.batch_pairs,
        "local_torch_threads": args.torch_threads,
    }
    print(json.dumps(meta, indent=2))
    print("\n| engine | pairs | seconds | pairs/s | driver peak RSS (MB) | cache (MB) | load avg at start |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['pairs']} | {r['seconds']} | {r['pairs_per_s']} | {r['driver_peak_rss_mb']} "
            f"| {r['cache_mb']} | {r['load_avg_1m_at_start']} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
