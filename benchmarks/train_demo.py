"""Wall time and peak memory of training the two demo RMs from scratch (cold caches).

    python benchmarks/train_demo.py

Each model is trained in a fresh cache folder so nothing is reused from earlier
runs, except that demo-biased reuses the backbone embeddings demo-clean computed
(the two share their texts), exactly as on a user's first ``make demo``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_CACHE_DIR"] = tmp
        import torch

        from workbench.models import load_demo_model

        rows = {}
        for name in ("demo-clean", "demo-biased"):
            start = time.perf_counter()
            rm = load_demo_model(name)
            rows[name] = round(time.perf_counter() - start, 1)
            summary = json.loads((Path(rm.path) / "training_summary.json").read_text())
            print(
                f"{name}: {rows[name]} s total, embedding {summary['embed_seconds']:.1f} s, {summary['n_pairs']} pairs"
            )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d"),
                    "machine": platform.machine(),
                    "cpu_threads": torch.get_num_threads(),
                    "seconds": rows,
                    "peak_rss_mb": round(peak_mb),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
