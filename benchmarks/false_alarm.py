"""False alarms and power of every verdict family at the shipped data sizes (issue 12, item 7).

Runs :mod:`workbench.audits.simulation`: a null RM (no shortcut; labels drawn from its own
Bradley-Terry probabilities) through every graded family, and each planted effect through the
family that should catch it, for ``--seeds`` seeds; prints and writes one markdown table per
scenario with pass / inconclusive / warn / fail rates and 95% Clopper-Pearson intervals, and
checks the bounds: per family false warn <= 5% and false fail <= 1%, any alarm over the whole
audit <= 10%, each planted effect flagged (warn or fail) in >= 80% of seeds.

    python benchmarks/false_alarm.py --seeds 200 --n-boot 200 --jobs 2 --out false_alarm.md

Exit status 1 when a bound is violated (point estimates; the intervals are shown).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.audits.simulation import (  # noqa: E402
    SCENARIOS,
    load_simulation_data,
    run_simulation,
    verdict_rates,
)

#: bounds of issue 12: per family false warn and false fail, whole-audit any alarm, power
FALSE_WARN, FALSE_FAIL, ANY_ALARM, POWER = 0.05, 0.01, 0.10, 0.80

_DATA = None


def _worker(args):
    scenario, seeds, n_boot, n_null = args
    global _DATA
    if _DATA is None:
        _DATA = load_simulation_data()
    return run_simulation(_DATA, seeds, [scenario], n_boot=n_boot, n_null=n_null)


def _chunks(seq, k):
    return [seq[i::k] for i in range(k) if seq[i::k]]


def check_bounds(rates: pd.DataFrame) -> list[str]:
    """Bound violations (point rates) as readable lines; empty when every bound holds."""
    bad = []
    for r in rates.itertuples():
        sc = SCENARIOS.get(r.scenario)
        planted = sc is not None and sc.family is not None
        if r.family in ("any alarm", "any non-pass"):
            if not planted and r.family == "any alarm" and r.alarm > ANY_ALARM:
                bad.append(f"{r.scenario}: any alarm {r.alarm:.3f} > {ANY_ALARM}")
            continue
        if planted:
            if r.family == sc.family and r.alarm < POWER:
                bad.append(f"{r.scenario}: {r.family} flagged in {r.alarm:.3f} < {POWER}")
        else:
            if r.warn > FALSE_WARN:
                bad.append(f"{r.scenario}: {r.family} false warn {r.warn:.3f} > {FALSE_WARN}")
            if r.fail > FALSE_FAIL:
                bad.append(f"{r.scenario}: {r.family} false fail {r.fail:.3f} > {FALSE_FAIL}")
    return bad


def markdown(rates: pd.DataFrame) -> str:
    """One markdown table per scenario."""
    out = []
    for name, g in rates.groupby("scenario", sort=False):
        sc = SCENARIOS.get(name)
        n = int(g["n_seeds"].iloc[0])
        what = f"power for **{sc.family}**" if sc is not None and sc.family else "false alarms"
        out.append(f"**{name}** ({what}, {n} seeds; 95% Clopper-Pearson intervals)\n")
        out.append("| family | pass | inconclusive | warn | fail (95% CI) | warn or fail (95% CI) |")
        out.append("|---|---|---|---|---|---|")
        for r in g.itertuples():
            ci = f"{r.alarm:.3f} ({r.alarm_ci_low:.3f}-{r.alarm_ci_high:.3f})"
            if r.family in ("any alarm", "any non-pass"):
                out.append(f"| *{r.family}* (whole audit) | | | | | {ci} |")
                continue
            fail = f"{r.fail:.3f} ({r.fail_ci_low:.3f}-{r.fail_ci_high:.3f})"
            out.append(f"| {r.family} | {r.pass_:.3f} | {r.inconclusive:.3f} | {r.warn:.3f} | {fail} | {ci} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200, help="seeds per scenario")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (and drift permutations) per check")
    ap.add_argument("--n-null", type=int, default=50, help="ECE null draws (calibration)")
    ap.add_argument("--scenarios", default="all", help="semicolon-separated scenario names, or 'all'")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--out", default="", help="write the markdown tables here")
    ap.add_argument("--runs-csv", default="", help="write the per-seed verdicts here")
    args = ap.parse_args(argv)
    names = list(SCENARIOS) if args.scenarios == "all" else [s.strip() for s in args.scenarios.split(";")]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    t0 = time.time()
    tasks = [(name, chunk, args.n_boot, args.n_null) for name in names for chunk in _chunks(seeds, 4 * args.jobs)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(_worker, tasks))
    else:
        parts = [_worker(t) for t in tasks]
    runs = pd.concat(parts, ignore_index=True).sort_values(["scenario", "seed"], kind="stable")
    runs["scenario"] = pd.Categorical(runs["scenario"], categories=names, ordered=True)
    runs = runs.sort_values(["scenario", "seed"]).reset_index(drop=True)
    runs["scenario"] = runs["scenario"].astype(str)
    rates = verdict_rates(runs).rename(columns={"pass": "pass_"})
    wall = time.time() - t0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    head = (
        f"`python benchmarks/false_alarm.py {' '.join(argv if argv is not None else sys.argv[1:])}` · "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} {platform.processor() or ''}, "
        f"{os.cpu_count()} CPU cores, {args.jobs} jobs · load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} · {wall:.0f} s wall · n_boot {args.n_boot}, n_null {args.n_null}, seeds "
        f"{seeds[0]}-{seeds[-1]}\n"
    )
    bad = check_bounds(rates)
    verdict = "All bounds hold." if not bad else "Bounds violated:\n" + "\n".join(f"- {b}" for b in bad)
    text = head + "\n" + markdown(rates) + "\n" + verdict + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if args.runs_csv:
        runs.to_csv(args.runs_csv, index=False)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
