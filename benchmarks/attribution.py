"""Cost per explanation of the attribution methods, in seconds (CPU, demo RM by default).

Methods timed on the same responses (demo-eval chosen responses, score cache off):

* integrated gradients (Captum LayerIntegratedGradients) for every combination of
  ``--steps`` (n_steps) and ``--batch-sizes`` (internal_batch_size: how many
  interpolation points go through the model in one forward/backward pass);
* occlusion (leave one word out; all variants scored in one engine call);
* SHAP Partition explainer with ``--shap-max-evals``.

Each row reports the median and mean seconds per explanation over ``--n``
responses (x ``--repeats``) after one warm-up explanation, plus the mean model
evaluations (IG: n_steps interpolation points + 2 end points, each
interpolation point a forward and a backward pass; occlusion: words + 1; SHAP:
the texts it scored). Configurations take turns response by response, so a
shared machine's changing load affects them alike.

    python benchmarks/attribution.py                 # demo-biased, 8 responses
    python benchmarks/attribution.py --n 4 --steps 16 32 --batch-sizes 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def time_methods(explainers: dict, prompts, responses, repeats: int = 1):
    """Seconds per explanation of every explainer, interleaved.

    Configurations take turns on each response (round robin), so a change in
    machine load during the run hits all of them alike; each gets one warm-up
    explanation first. Returns {name: {median_s, mean_s, evals}}.
    """
    for ex in explainers.values():
        ex.attribute(prompts[0], responses[0])  # warm-up
    seconds = {name: [] for name in explainers}
    evals = {name: [] for name in explainers}
    for _ in range(repeats):
        for p, r in zip(prompts, responses):
            for name, ex in explainers.items():
                start = time.perf_counter()
                e = ex.attribute(p, r)
                seconds[name].append(time.perf_counter() - start)
                evals[name].append(e.info.get("n_evals", (e.info.get("n_steps") or 0) + 2))
                print(f"{name}: {seconds[name][-1]:.3f}s", file=sys.stderr, flush=True)
    return {
        name: {
            "median_s": float(np.median(seconds[name])),
            "mean_s": float(np.mean(seconds[name])),
            "evals": float(np.mean(evals[name])),
        }
        for name in explainers
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo-biased")
    ap.add_argument("--data", default="demo-eval")
    ap.add_argument("--n", type=int, default=8, help="responses to explain per method")
    ap.add_argument("--repeats", type=int, default=1, help="passes over the responses")
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--shap-max-evals", type=int, default=200)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    import torch

    from workbench.audits.attribution import IntegratedGradientsExplainer, OcclusionExplainer, ShapExplainer
    from workbench.data import load_data
    from workbench.models import load_reward_model

    if args.threads:
        torch.set_num_threads(args.threads)
    rm = load_reward_model(args.model, device=args.device)
    pairs = load_data(args.data).sample(args.n, seed=args.seed).frame
    prompts, responses = list(pairs["prompt"]), list(pairs["chosen"])
    n_tokens = [len(rm.encode(rm.format(p, r))[0]) for p, r in zip(prompts, responses)]
    n_words = [len(r.split()) for r in responses]

    explainers, labels = {}, {}
    for steps in args.steps:
        for bs in args.batch_sizes:
            key = f"ig-{steps}-{bs}"
            explainers[key] = IntegratedGradientsExplainer(rm, n_steps=steps, internal_batch_size=bs)
            labels[key] = ("integrated gradients", steps, bs)
    explainers["occlusion"] = OcclusionExplainer(rm)
    labels["occlusion"] = ("occlusion (leave one word out)", "", "")
    explainers["shap"] = ShapExplainer(rm, max_evals=args.shap_max_evals)
    labels["shap"] = (f"SHAP partition (max_evals={args.shap_max_evals})", "", "")
    load_start = os.getloadavg()[0]
    timings = time_methods(explainers, prompts, responses, args.repeats)
    rows = [
        {"method": labels[k][0], "n_steps": labels[k][1], "internal_batch_size": labels[k][2], **timings[k]}
        for k in explainers
    ]

    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "device": str(rm.device),
        "model": rm.name,
        "data": args.data,
        "responses": len(responses),
        "mean_tokens": float(np.mean(n_tokens)),
        "mean_words": float(np.mean(n_words)),
        "torch": torch.__version__,
    }
    print(json.dumps(meta, indent=2))
    print("\n| method | n_steps | internal_batch_size | s / explanation (median) | mean | model evals / explanation |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['n_steps']} | {r['internal_batch_size']} | {r['median_s']:.3f} | {r['mean_s']:.3f} | {r['evals']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
