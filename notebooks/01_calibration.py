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
# # 01 · Calibration: are the RM's pairwise probabilities right?
#
# Under Bradley-Terry an RM predicts P(first response preferred) = sigmoid(r(first) − r(second)).
# This notebook checks those probabilities against the human labels.
#
# * **Data.** Calibration is audited **in distribution** by default: `data = "demo-eval"` holds held-out
#   topics of the demo RMs' own task. The golden set is *out of distribution* for the demo RMs (other
#   prompts, other writing), where their probabilities are expected to be too confident; audit your own RM
#   on data like the data it will score.
# * **Orientation.** Benchmark pairs list the chosen response first, which makes a reliability diagram
#   degenerate (every outcome is 1). Every pair is therefore used in both orders (`orientation="both"`, the
#   default: no orientation noise); `"random"` flips pairs with `seed` instead. Accuracy, reward gap, Brier
#   and NLL do not depend on this; the binned metrics do.
# * **Graded checks** (family *calibration*), each on a 95% interval from a cluster bootstrap that resamples
#   whole topics or prompts (never single pairs):
#   - **ECE excess**: the ECE minus the ECE a *perfectly calibrated* RM would show on these pairs by chance
#     (labels drawn from the RM's own probabilities; Bröcker and Smith 2007). Raw ECE is biased upward in
#     small samples, so the null mean and its 95th percentile are shown next to it.
#   - **Temperature** T: dividing the margins by T fits the labels best; T > 1 means over-confident, T < 1
#     under-confident; graded on log T, in both directions.
# * **Recalibration**: temperature scaling, Platt and isotonic, cross-fitted with folds grouped by topic or
#   prompt, so every pair is evaluated once by calibrators that never saw its topic.
# * **Decision boundary**: pairs with |p − 0.5| ≤ `band`, where a calibrated RM is barely better than a coin.

# %% tags=["parameters"]
model = "demo-biased"  # RM spec: demo-clean | demo-biased | HF folder or hub id | value-head folder | scores:FILE | python:mod:fn
data = "demo-eval"  # data spec: demo-eval (in distribution for the demo RMs) | golden | path to .jsonl/.csv/.parquet | save_to_disk folder | hf:NAME
sample_size = 0  # number of pairs to score; 0 scores all
seed = 0  # seed for sampling, null draws, bootstrap (and the flips of orientation "random")
n_bins = 10  # bins of the reliability diagram, ECE, MCE and Brier decomposition
strategy = "uniform"  # binning: uniform (equal width) | quantile (equal mass)
orientation = "both"  # both (every pair in both orders) | random (seeded flips) | as_given
band = 0.1  # decision-boundary band: pairs with |p - 0.5| at most band
n_folds = 5  # folds of the grouped cross-fitting of temperature / Platt / isotonic
n_boot = 1000  # cluster-bootstrap resamples for confidence intervals
n_null = 100  # label draws from the RM's own probabilities for the ECE null
cluster_column = None  # column naming the resampling unit; None: topic or prompt id if present, else the prompt
label_smoothing = 0.1  # smoothing of the comparison demo RM
compare_smoothing = True  # demo RMs only: train/load a label-smoothed twin and compare calibration
show_slider = "auto"  # temperature slider: "auto" (only with a live Jupyter frontend) | True | False
split = None  # split of a Hugging Face dataset (hf:NAME or a save_to_disk folder); None: the spec's own or the only one
columns = ""  # input columns under other names, in the form of the CLI option --columns; "": the schema names
on_error = "skip"  # bad data rows: "skip" (counted by reason; notebook 00 grades the share) or "raise" (--strict)

# %%
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from workbench.audits.calibration import (
    calibration_audit,
    compare_audits,
    interactive_frontend,
    plot_audits,
    temperature_slider,
)
from workbench.data import load_data, parse_columns
from workbench.models import DEMO_NAMES, load_demo_model, load_reward_model, score_pairs
from workbench.reports import RULE, escape_text, setup_notebook, show_table

setup_notebook()
audit_args = dict(
    n_bins=n_bins,
    strategy=strategy,
    orientation=orientation,
    seed=seed,
    band=band,
    n_folds=n_folds,
    n_boot=n_boot,
    n_null=n_null,
    cluster_column=cluster_column,
)

# %% [markdown]
# ## Load and score

# %%
rm = load_reward_model(model)
pairs = load_data(data, on_error=on_error, split=split, columns=parse_columns(columns)).sample(
    sample_size or None, seed=seed
)
scores = score_pairs(rm, pairs, progress=False)
display(
    HTML(
        f"<p><b>Model</b> <code>{escape_text(rm.name)}</code> (fingerprint <code>{rm.fingerprint[:16]}</code>), "
        f"<b>data</b> <code>{escape_text(pairs.source)}</code>: {len(pairs)} pairs, "
        f"{pairs.n_skipped} rows skipped, {scores.n_truncated} pairs with a truncated response</p>"
    )
)

# %% [markdown]
# ## Verdicts
#
# Each check is graded on its interval: pass when the interval rules out a harmful effect of the warn size,
# fail when it shows one beyond the fail margin, warn in between, inconclusive when the data cannot tell.

# %%
audit = calibration_audit(scores, data=pairs, **audit_args)
display(HTML(f"<p><b>Rule</b>: {escape_text(RULE)}.</p>"))
show_table(audit.verdicts_frame())

# %% [markdown]
# ## Metrics
#
# Intervals resample whole topics or prompts. Raw binned errors (ECE, MCE, top-label ECE, Brier reliability)
# get no interval: their percentile intervals are biased upward; `ece_excess` is the graded version.

# %%
show_table(audit.to_frame())

# %% [markdown]
# ## Reliability diagram
#
# Observed frequency of "first preferred" per bin against the mean predicted probability, with 95% Wilson
# intervals; the strip below counts pairs per bin. Points in the red region are over-confident, in the
# blue region under-confident.

# %%
audit.plot()
plt.show()

# %% [markdown]
# ## Before and after recalibration (cross-fitted)
#
# Every pair is scored by calibrators fitted on the other folds; folds are grouped by topic or prompt.

# %%
direction = "over" if audit.temperature > 1 else "under"
t_low, t_high = audit.uncertainty.temperature_ci
display(
    HTML(
        f"<p>{audit.comparison.n_folds} folds grouped by {escape_text(audit.cluster_unit)} "
        f"({audit.n_clusters} clusters, {audit.n_pairs} pairs): "
        f"<b>T = {audit.temperature:.3f}</b> (95% CI {t_low:.3f} to {t_high:.3f}; {direction}-confident margins)</p>"
    )
)
show_table(audit.calibrators_frame())
audit.plot_comparison()
plt.show()

# %% [markdown]
# ## Decision boundary

# %%
print(audit.boundary.message)
show_table(audit.boundary_frame())

# %% [markdown]
# ## Per category and per subset

# %%
if not audit.groups:
    print("the data has no category or subset column")
for column, table in audit.groups.items():
    display(HTML(f"<p><b>By {escape_text(column)}</b> (ECE with few pairs per group is mostly binning noise)</p>"))
    show_table(table)

# %% [markdown]
# ## Effect of label smoothing
#
# Label smoothing trains on targets y(1 − ε) + (1 − y)ε instead of 0/1, which caps the margins the
# Bradley-Terry loss pushes towards (at log((1 − ε)/ε)). Same data, same seed, same orientation.

# %%
audit_smooth = None
if not compare_smoothing:
    print("compare_smoothing=False: skipped")
elif model not in DEMO_NAMES:
    print(f"label-smoothing comparison needs a demo RM ({', '.join(DEMO_NAMES)}); model={model!r} is not one")
elif not label_smoothing:
    print("label_smoothing=0: nothing to compare")
else:
    rm_smooth = load_demo_model(model, label_smoothing=label_smoothing)
    audit_smooth = calibration_audit(score_pairs(rm_smooth, pairs, progress=False), data=pairs, **audit_args)
    audits = {f"{model} (no smoothing)": audit, f"{model} (label smoothing {label_smoothing:g})": audit_smooth}
    show_table(compare_audits(audits))
    plot_audits(audits)
    plt.show()

# %% [markdown]
# ## Publish the verdicts for the report

# %%
_ = audit.publish(smoothed=audit_smooth, label_smoothing=label_smoothing)

# %% [markdown]
# ## Explore the temperature
#
# In JupyterLab the slider redraws the diagram for sigmoid(margin / T); "fit T" jumps to the NLL-optimal value
# (fitted on all pairs, for exploration only). In a headless run the static figures above are the report.

# %%
if show_slider is True or (show_slider == "auto" and interactive_frontend()):
    display(
        temperature_slider(
            audit.pairs["margin"],
            audit.pairs["label"],
            n_bins=n_bins,
            strategy=strategy,
            orientation=orientation,
            seed=seed,
        )
    )
else:
    print("no interactive frontend: slider not shown (set show_slider=True to force it)")
