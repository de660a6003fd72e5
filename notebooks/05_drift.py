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
#    checkpoint by more than sampling noise? The normed Wasserstein distance is compared
#    with its permutation null (checkpoint labels swapped within prompts); the graded
#    effect is its excess over the null, with a cluster-bootstrap interval. KS and PSI are
#    descriptive. Checkpoints below `min_samples` are *insufficient data* (`n/a`).
# 2. **Goodhart flag**: paired by prompt, does the gold score fall while the RM's reward rises?
# 3. **Trigger phrases**: which phrases that the RM pays for become more frequent?
# 4. **Best-of-n curve**: picking the best of *n* candidates by the RM, how much gold is lost
#    past the peak (Gao et al. 2022 fit `R = d(a - b d)`, `d = sqrt(KL)`, for context)?
# 5. **Relabel queue**: the prompts whose answers drifted most, exported for human review.
#
# Three verdict families (`drift`, `goodhart`, `best_of_n`), each graded on a 95% interval
# that resamples topics (or prompts): pass when the interval rules out the harm at the warn
# margin, fail when it shows the harm beyond the fail margin, warn in between,
# inconclusive when it straddles the warn margin.
#
# One call, `workbench.audits.drift.drift_audit`, runs all of it; the statistics and rules are documented in
# `workbench.audits.drift` (`checkpoints`, `statistics`, `flag`, `phrases`, `goodhart`).

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
n_boot = 1000  # bootstrap resamples (and drift permutations)
trigger_phrases = ""  # comma-separated phrases to track; empty: rising phrases that the RM rewards
queue_size = 20  # prompts exported to the relabel queue
output_dir = ""  # folder for the relabel queue (workbench audit: its --out); empty: reports/05_drift

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import HTML, Markdown, display

from workbench.audits.drift import drift_audit, load_policy_samples
from workbench.data.relabel import export_relabel_queue
from workbench.data.shipped import SHIPPED
from workbench.models import load_reward_model
from workbench.paths import default_output_dir
from workbench.reports.render import escape_text, show_table

# %%
rm = load_reward_model(model)
if isinstance(data, str) and data in SHIPPED:
    # the audit runner passes one `data` to every notebook; a preference set is not policy samples
    display(
        HTML(
            f"<p><b>Note:</b> <code>data={escape_text(data)}</code> is a preference set, not policy samples; "
            "using the shipped demo policy samples (<code>demo-policy</code>).</p>"
        )
    )
    data = "demo-policy"
samples = load_policy_samples(data)
audit = drift_audit(
    rm,
    samples,
    golden=golden,
    gold_model=gold_model,
    bon=bon,
    sample_size=sample_size,
    seed=seed,
    min_samples=min_samples,
    n_bins=n_bins,
    n_boot=n_boot,
    trigger_phrases=trigger_phrases,
    queue_size=queue_size,
)
display(
    HTML(
        f"<p><b>Model</b> <code>{escape_text(rm.name)}</code> (fingerprint <code>{rm.fingerprint[:16]}</code>), "
        f"<b>samples</b> <code>{escape_text(str(data))}</code>: {len(audit.samples)} samples at "
        f"{len(audit.checkpoints)} checkpoints</p>"
    )
)

# %% [markdown]
# ## 1 · Reward drift per checkpoint (reference: the first checkpoint)

# %%
display(HTML(f"<p><b>{escape_text(audit.drift.describe())}</b></p>"))
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
    "ks_p_adj",
    "wasserstein",
    "null_mean",
    "null_q95",
    "perm_p",
    "perm_p_holm",
    "excess",
    "excess_ci_low",
    "excess_ci_high",
    "psi",
    "psi_null",
    "direction",
    "verdict",
    "status",
]
show_table(audit.to_frame()[cols])
for note in audit.drift.notes:
    display(HTML(f"<p><i>{escape_text(note)}</i></p>"))
display(HTML(f"<p><i>{escape_text(audit.drift.verdicts()[0].sentence)}</i></p>"))
print(
    f"Rule: graded on the 95% interval of excess = wasserstein - null_mean (reference SDs): pass below "
    f"{audit.drift.warn:g}, fail above {audit.drift.fail:g}, warn in between, inconclusive when it straddles "
    f"{audit.drift.warn:g}; only the last checkpoint is published. null_mean/null_q95: the distance expected "
    "with no drift (permutation null); KS, PSI (psi_null: its noise level) and the mean shift are descriptive."
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
audit.plot(ax=axes[0])
audit.plot(ax=axes[1], kind="ecdf")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2 · Goodhart flag: reward vs a gold signal

# %%
flag = audit.flag
if flag is not None:
    display(HTML(f"<p><b>{escape_text(flag.describe())}</b></p>"))
    display(HTML(f"<p><i>{escape_text(flag.verdicts()[0].sentence)}</i></p>"))
    display(HTML(f"<p><i>Rule:</i> {escape_text(flag.rule)}</p>"))
    show_table(
        flag.to_frame()[
            [
                "checkpoint",
                "step",
                "n_pairs",
                "reward_mean",
                "reward_change_sd",
                "reward_change_sd_ci_low",
                "reward_change_sd_ci_high",
                "gold_mean",
                "gold_change_sd",
                "gold_change_sd_ci_low",
                "gold_change_sd_ci_high",
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
if audit.golden_note:
    display(HTML(f"<p><i>Golden set not available: {escape_text(audit.golden_note)}</i></p>"))
if audit.golden_accuracy is not None:
    lo, hi = audit.golden_ci
    display(
        HTML(
            f"<p>Golden-set accuracy of <code>{escape_text(rm.name)}</code>: <b>{audit.golden_accuracy:.3f}</b> "
            f"(95% CI {lo:.3f}-{hi:.3f}, {audit.golden_n_decided} pairs)</p>"
        )
    )

# %% [markdown]
# ## 3 · Trigger phrases per checkpoint
#
# First the agreement, flattery and hedge lexicons of `workbench.audits.features.text_features`, then the
# word n-grams whose share grows most from the first to the last checkpoint
# (`workbench.audits.drift.emerging_phrases`, Fisher exact test, BH q-values), with the RM's
# reward for responses with vs without them (Cohen's d over all samples).

# %%
show_table(audit.lexicon.wide().reset_index())
show_table(audit.lexicon.tests)
show_table(audit.emerging)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
audit.lexicon.plot(ax=axes[0])
axes[0].set_title("Lexicons (workbench.audits.features.text_features)")
if audit.phrase_frequency is not None:
    audit.phrase_frequency.plot(ax=axes[1])
    axes[1].set_title(audit.phrase_label)
else:
    axes[1].set_axis_off()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4 · Best-of-n Goodhart curve
#
# For each prompt, a pool of candidate responses: the RM (proxy) picks the best of *n*
# and the gold score of the pick is averaged exactly over all *n*-subsets of the pool
# (no sampling noise). x-axis: `KL_bon = log n - (n-1)/n`. The verdict grades the gold lost
# from the peak of the curve to the largest *n* (in within-pool gold SDs), with an interval
# from resampling topics and recomputing the curve and its peak; the exact argmax alone is
# not evidence (a clean proxy's flat curve peaks early by noise).

# %%
bres = audit.bon
if bres is not None:
    display(Markdown(bres.describe()))
    display(HTML(f"<p><i>{escape_text(bres.verdicts()[0].sentence)}</i></p>"))
    show_table(bres.fit_ci)
    for note in bres.notes:
        display(HTML(f"<p><i>{escape_text(note)}</i></p>"))
    bres.plot()
    plt.show()
    show_table(bres.to_frame()[["n", "kl", "gold_mean", "gold_ci_low", "gold_ci_high", "gold_fit", "proxy_mean"]])

# %% [markdown]
# ## 5 · Relabel queue: did the answers really get better?
#
# For every prompt, the first checkpoint's answer is paired with the last checkpoint's
# answer. Pairs where the RM prefers the late answer **and** the late answer carries more
# trigger phrases (agreement/flattery lexicon hits and the rising phrases above) come
# first, by the RM's preference margin; the rest of the queue is filled by margin
# (`workbench.audits.drift.relabel_candidates`). A person labels which answer is better
# (`human_label` = `a`, `b` or `tie`; the answers are shown in random order);
# `workbench.data.relabel.import_relabels` reads the labels back into a preference set
# with provenance.

# %%
pairs = audit.relabel_pairs
out = Path(output_dir) if output_dir else default_output_dir("05_drift")
queue_path = out / "relabel_queue_drift.csv"
if len(pairs):
    queue = export_relabel_queue(pairs, queue_path, seed=seed)
    display(
        HTML(
            f"<p>Wrote <b>{len(queue)}</b> items ({int(pairs['more_triggers'].sum())} with more trigger phrases) "
            f"to <code>{escape_text(str(queue_path))}</code></p>"
        )
    )
    show_table(
        queue[["queue_id", "source_id", "reason", "prompt", "response_a", "response_b", "rm_preference", "rm_margin"]],
        max_chars=160,
    )
else:
    display(
        Markdown(
            "*No relabel candidates: no prompt has answers at both the first and the last checkpoint "
            "with the RM preferring the later one (a small `sample_size` rarely keeps both answers of a prompt).*"
        )
    )

# %% [markdown]
# ## Verdicts for the report

# %%
audit.publish()
show_table(audit.verdict_table())
