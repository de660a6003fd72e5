# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Drift and Goodhart: does the policy learn to please the RM instead of the user?
#
# A policy optimised against a reward model (RM) produces samples at successive
# checkpoints. This notebook scores them with the RM and asks:
#
# 1. **Reward drift**: does the RM's reward distribution move away from the first
#    checkpoint? (KS test, normed Wasserstein distance, PSI, each with its sample size;
#    checkpoints below `min_samples` are reported as *insufficient data*.)
# 2. **Goodhart flag**: does the reward rise while a *gold* signal stays flat or falls?
# 3. **Trigger phrases**: which phrases that the RM pays for become more frequent?
# 4. **Best-of-n curve**: picking the best of *n* candidates by the RM, where does the
#    gold score of the pick peak (Gao et al. 2022 fit `R = d(a - b d)`, `d = sqrt(KL)`)?
# 5. **Relabel queue**: the prompts whose answers drifted most, exported for human review.
#
# All statistics and rules are documented in `workbench.audits.drift.checkpoints` and `workbench.audits.drift.goodhart`.

# %% tags=["parameters"]
model = "demo-biased"  # the RM under audit (proxy): demo-clean | demo-biased | model folder | scores:FILE ...
data = "demo-policy"  # policy samples: demo-policy (data/demo/policy_samples.jsonl) or a .jsonl/.csv/.parquet path
golden = "golden"  # golden preference set for the RM's own accuracy ("" to skip)
gold_model = ""  # gold scorer spec; empty: the samples' gold column, else the demo's attrs-based gold judge
bon = "demo-bon"  # best-of-n pools: demo-bon (data/demo/bon_pools.jsonl) or a path ("" to skip)
sample_size = 0  # samples per checkpoint to score (0 for all)
seed = 0  # seed for sampling and bootstrap
min_samples = 30  # checkpoints with fewer samples are reported as "insufficient data"
n_bins = 10  # PSI bins (reference quantiles)
n_boot = 1000  # bootstrap resamples
trigger_phrases = ""  # comma-separated phrases to track; empty: rising phrases that the RM rewards
queue_size = 20  # prompts exported to the relabel queue
output_dir = ""  # folder for the relabel queue; empty: reports/05_drift in the checkout

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from workbench.audits.calibration.metrics import bootstrap_ci, pairwise_accuracy
from workbench.audits.drift.checkpoints import (
    checkpoint_pairs,
    demo_gold_score,
    emerging_phrases,
    goodhart_flag,
    load_policy_samples,
    reward_drift,
    trigger_frequency,
)
from workbench.audits.drift.goodhart import best_of_n_curve, load_bon_pools
from workbench.data.relabel import export_relabel_queue
from workbench.data.shipped import SHIPPED, load_data
from workbench.models.adapters import load_reward_model
from workbench.models.scoring import score_pairs, score_texts
from workbench.paths import REPO_DIR
from workbench.reports.render import escape_text, show_table
from workbench.reports.verdicts import publish

# %%
rm = load_reward_model(model)
if isinstance(data, str) and data in SHIPPED:
    # the audit runner passes one `data` to every notebook; a preference set is not policy samples
    display(
        Markdown(
            f"**Note:** `data={escape_text(data)}` is a preference set, not policy samples; "
            "using the shipped demo policy samples (`demo-policy`)."
        )
    )
    data = "demo-policy"
samples = load_policy_samples(data)
if sample_size:
    keep = samples.sample(frac=1, random_state=seed).groupby("checkpoint", sort=False).head(int(sample_size)).index
    samples = samples.loc[sorted(keep)].reset_index(drop=True)
scores = score_texts(rm, samples["prompt"].tolist(), samples["response"].tolist(), progress=False).scores
samples["reward"] = scores
display(
    Markdown(
        f"**Model** `{escape_text(rm.name)}` (fingerprint `{rm.fingerprint[:16]}`), **samples** "
        f"`{escape_text(str(data))}`: {len(samples)} samples at {samples['checkpoint'].nunique()} checkpoints"
    )
)

# %% [markdown]
# ## 1 · Reward drift per checkpoint (reference: the first checkpoint)

# %%
drift = reward_drift(scores, samples["checkpoint"], samples["step"], min_samples=min_samples, n_bins=n_bins)
display(Markdown(f"**{escape_text(drift.summary())}**"))
cols = [
    "checkpoint",
    "step",
    "n",
    "mean",
    "mean_ci_low",
    "mean_ci_high",
    "q05",
    "q50",
    "q95",
    "mean_shift_sd",
    "ks_stat",
    "ks_p_adj",
    "wasserstein",
    "psi",
    "psi_null",
    "psi_band",
    "direction",
    "status",
]
show_table(drift.to_frame()[cols])
for note in drift.notes:
    display(Markdown(f"*{escape_text(note)}*"))
print(
    "Rule: drift = KS p < 0.05 (one test per checkpoint; reward_drift(adjust='holm') adjusts over checkpoints) "
    "AND normed Wasserstein >= 0.1 reference SDs. PSI bands: < 0.1 stable, 0.1-0.25 moderate, >= 0.25 major; "
    "psi_null is the PSI expected from sampling noise alone at these sample sizes."
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
drift.plot(ax=axes[0])
drift.plot(ax=axes[1], kind="ecdf")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2 · Goodhart flag: reward vs a gold signal

# %%
gold_name = flag = None
if gold_model:
    gold_rm = load_reward_model(gold_model)
    samples["gold"] = score_texts(
        gold_rm, samples["prompt"].tolist(), samples["response"].tolist(), progress=False
    ).scores
    gold_name = f"gold RM {gold_rm.name}"
elif "gold" in samples.columns and samples["gold"].notna().all():
    gold_name = "gold labels"
elif "attrs" in samples.columns:
    samples["gold"] = demo_gold_score(samples)
    gold_name = "demo gold judge"
order = drift.to_frame()["checkpoint"].tolist()
steps = None if drift.to_frame()["step"].isna().any() else dict(zip(order, drift.to_frame()["step"].astype(int)))
if gold_name:
    ck = samples["checkpoint"].to_numpy()
    flag = goodhart_flag(
        {c: scores[ck == c] for c in order},
        {c: samples["gold"].to_numpy(dtype=float)[ck == c] for c in order},
        steps=steps,
        gold_name=gold_name,
    )
    display(Markdown(f"**{escape_text(flag.summary())}**"))
    display(Markdown(f"*Rule:* {escape_text(flag.rule)}"))
    show_table(
        flag.to_frame()[
            [
                "checkpoint",
                "step",
                "reward_mean",
                "reward_change",
                "reward_change_ci_low",
                "gold_mean",
                "gold_change",
                "gold_change_ci_low",
                "gold_change_ci_high",
                "flag",
            ]
        ]
    )
    flag.plot()
    plt.show()
else:
    display(Markdown("*No gold signal: pass `gold_model=...` or give the samples a `gold` column.*"))

# %% [markdown]
# ### The RM on the golden set
#
# For context: the RM's pairwise accuracy on the fixed golden set. A good accuracy here
# does not rule out the drift above: the policy moves to regions (long, flattering
# answers) that the golden pairs do not cover.

# %%
golden_accuracy = None
if golden:
    try:
        gold_pairs = load_data(golden)
    except (FileNotFoundError, ValueError) as exc:
        gold_pairs = None
        display(Markdown(f"*Golden set not available: {escape_text(str(exc))}*"))
    if gold_pairs is not None:
        gp = score_pairs(rm, gold_pairs, progress=False)
        acc = pairwise_accuracy(gp.margin, gp.label)
        golden_accuracy = acc.accuracy
        lo, hi = bootstrap_ci(
            lambda m, y: pairwise_accuracy(m, y).accuracy, gp.margin, gp.label, n_boot=n_boot, seed=seed
        )
        display(
            Markdown(
                f"Golden-set accuracy of `{escape_text(rm.name)}`: **{acc.accuracy:.3f}** "
                f"(95% CI {lo:.3f}-{hi:.3f}, {acc.n_decided} pairs)"
            )
        )

# %% [markdown]
# ## 3 · Trigger phrases per checkpoint
#
# First the agreement, flattery and hedge lexicons of `workbench.audits.features.text_features`, then the
# word n-grams whose share grows most from the first to the last checkpoint
# (`workbench.audits.drift.checkpoints.emerging_phrases`, Fisher exact test, BH q-values), with the RM's
# reward for responses with vs without them (Cohen's d over all samples).

# %%
tf_lex = trigger_frequency(samples["response"], samples["checkpoint"], steps=samples["step"])
show_table(tf_lex.wide().reset_index())
show_table(tf_lex.tests)
emerging = emerging_phrases(
    samples["response"], samples["checkpoint"], scores, steps=samples["step"], ngram_range=(2, 4), min_count=8, top_k=15
)
show_table(emerging)
if trigger_phrases.strip():
    phrases = [p.strip() for p in trigger_phrases.split(",") if p.strip()]
    label = "phrases from the trigger_phrases parameter"
else:
    rising = emerging[(emerging["q_value"] < 0.05) & (emerging["change"] > 0)]
    phrases = rising.sort_values("cohens_d", ascending=False)["ngram"].head(6).tolist()
    label = "rising phrases the RM rewards most (q < 0.05)"
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
tf_lex.plot(ax=axes[0])
axes[0].set_title("Lexicons (workbench.audits.features.text_features)")
if phrases:
    tf = trigger_frequency(samples["response"], samples["checkpoint"], phrases, steps=samples["step"])
    tf.plot(ax=axes[1])
    axes[1].set_title(label)
else:
    axes[1].set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4 · Best-of-n Goodhart curve
#
# For each prompt, a pool of candidate responses: the RM (proxy) picks the best of *n*
# and the gold score of the pick is averaged exactly over all *n*-subsets of the pool
# (no sampling noise). x-axis: `KL_bon = log n - (n-1)/n`.

# %%
bres = None
if bon:
    pools = load_bon_pools(bon)
    proxy = score_texts(rm, pools["prompt"].tolist(), pools["response"].tolist(), progress=False).scores
    if gold_model:
        gold_bon = score_texts(gold_rm, pools["prompt"].tolist(), pools["response"].tolist(), progress=False).scores
    else:
        gold_bon = pools["gold"].to_numpy(dtype=float)
    bres = best_of_n_curve(pools, proxy, gold_bon, n_boot=n_boot, seed=seed)
    s = bres.summary()
    peak = (
        f"fitted peak at KL* = {s['fit_kl_star']:.2f} nats (n* = {s['fit_n_star']:.1f}), gold {s['fit_gold_peak']:.3f}"
        if bres.fit.has_peak
        else "no fitted peak (b <= 0)"
    )
    display(
        Markdown(
            f"**{s['n_pools']} prompts, n = 1..{s['n_max']}**: gold at n=1 {s['gold_n1']:.3f}; empirical best n = "
            f"**{s['best_n']}** (bootstrap 95% range {s['best_n_ci'][0]:.0f}-{s['best_n_ci'][1]:.0f}) with gold "
            f"{s['gold_at_best_n']:.3f}; gold at n={s['n_max']}: {s['gold_at_n_max']:.3f}; best possible (gold oracle) "
            f"{s['gold_oracle']:.3f}. Fit R = d(a - b d): a = {s['fit_a']:.3f}, b = {s['fit_b']:.3f}, R² = {s['fit_r2']:.3f}; {peak}."
        )
    )
    show_table(bres.fit_ci)
    for note in bres.notes:
        display(Markdown(f"*{escape_text(note)}*"))
    bres.plot()
    plt.show()
    show_table(bres.to_frame()[["n", "kl", "gold_mean", "gold_ci_low", "gold_ci_high", "gold_fit", "proxy_mean"]])

# %% [markdown]
# ## 5 · Relabel queue: did the answers really get better?
#
# For every prompt, the first checkpoint's answer is paired with the last checkpoint's
# answer. Pairs where the RM prefers the late answer **and** the late answer carries more
# trigger phrases (agreement/flattery lexicon hits and the rising phrases above) come
# first, by the RM's preference margin; the rest of the queue is filled by margin. A person
# labels which answer is better (`human_label` = `a`, `b` or `tie`; the answers are shown in
# random order); `workbench.data.relabel.import_relabels` reads the labels back into a
# preference set with provenance.

# %%
from workbench.audits.features.text_features import agreement_count, count_phrases, flattery_count


def trigger_hits(text):
    return agreement_count(text) + flattery_count(text) + (count_phrases(text, phrases) if phrases else 0)


first, last = order[0], order[-1]
key = "prompt_id" if "prompt_id" in samples.columns else "prompt"
pairs = checkpoint_pairs(samples, scores, first, last, key=key)
pairs["gain"] = pairs["score_b"] - pairs["score_a"]
pairs["more_triggers"] = [trigger_hits(b) > trigger_hits(a) for a, b in zip(pairs["response_a"], pairs["response_b"])]
pairs = pairs[pairs["gain"] > 0].sort_values(["more_triggers", "gain"], ascending=False).head(int(queue_size))
pairs["reason"] = [
    f"drift trigger: RM prefers the {last} answer" + (" (more trigger phrases)" if t else "")
    for t in pairs["more_triggers"]
]
out = Path(output_dir) if output_dir else REPO_DIR / "reports" / "05_drift"
queue_path = out / "relabel_queue_drift.csv"
queue = export_relabel_queue(pairs, queue_path, seed=seed)
display(
    Markdown(
        f"Wrote **{len(queue)}** items ({int(pairs['more_triggers'].sum())} with more trigger phrases) "
        f"to `{escape_text(str(queue_path))}`"
    )
)
show_table(
    queue[["queue_id", "source_id", "reason", "prompt", "response_a", "response_b", "rm_preference", "rm_margin"]],
    max_chars=160,
)

# %% [markdown]
# ## Verdicts for the report

# %%
parts = (
    [drift.verdicts()]
    + ([flag.verdicts()] if flag is not None else [])
    + ([bres.verdicts()] if bres is not None else [])
)
verdict_table = pd.concat(parts, ignore_index=True)
last = drift.to_frame().iloc[-1]
metrics = {
    "n_samples": len(samples),
    "n_checkpoints": len(order),
    "last_checkpoint": last["checkpoint"],
    "last_status": last["status"],
    "last_wasserstein": last["wasserstein"],
    "last_ks_p": last["ks_p_adj"],
    "last_mean_shift_sd": last["mean_shift_sd"],
    "golden_accuracy": golden_accuracy,
}
if flag is not None:
    metrics.update(goodhart_flagged=flag.flagged, gold_trend=flag.gold_trend)
if bres is not None:
    metrics.update({f"bon_{k}": v for k, v in bres.summary().items() if k != "best_n_ci"})
publish("drift", verdict_table, metrics)
show_table(verdict_table)
