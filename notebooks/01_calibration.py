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
# * **Orientation.** Benchmark pairs list the chosen response first, which makes a reliability diagram
#   degenerate (every outcome is 1). Pairs are therefore flipped at random with `seed` (`orientation="random"`),
#   or used in both orders (`"both"`). Accuracy, reward gap, Brier and NLL do not depend on this; the binned
#   metrics do. `top_label_ece` is the orientation-free view (confidence max(p, 1 − p) against agreement).
# * **Metrics**: pairwise accuracy (ties apart), mean reward gap, ECE with equal-width and equal-mass bins,
#   MCE, Brier with its Murphy decomposition (reliability − resolution + uncertainty + residual), NLL,
#   each with a 95% bootstrap CI over pairs.
# * **Recalibration**: temperature scaling (the fitted `T` says how much the margins should be divided by;
#   T > 1 = over-confident), Platt and isotonic, fitted on `1 − test_size` of the pairs and compared on the rest.
# * **Decision boundary**: pairs with |p − 0.5| ≤ `band`, where a calibrated RM is barely better than a coin.

# %% tags=["parameters"]
model = "demo-biased"  # RM spec: demo-clean | demo-biased | HF folder or hub id | value-head folder | scores:FILE | python:mod:fn
data = "golden"  # data spec: golden | demo-eval | path to .jsonl/.csv/.parquet | save_to_disk folder | hf:NAME
sample_size = 0  # number of pairs to score; 0 scores all
seed = 0  # seed for sampling, orientation flips, bootstrap and the calibration split
n_bins = 10  # bins of the reliability diagram, ECE, MCE and Brier decomposition
strategy = "uniform"  # binning: uniform (equal width) | quantile (equal mass)
orientation = "random"  # random (seeded flips) | both (both orders) | as_given
band = 0.1  # decision-boundary band: pairs with |p - 0.5| at most band
test_size = 0.5  # held-out fraction for fitting temperature / Platt / isotonic
n_boot = 1000  # bootstrap resamples for confidence intervals
label_smoothing = 0.1  # smoothing of the comparison demo RM
compare_smoothing = True  # demo RMs only: train/load a label-smoothed twin and compare calibration
show_slider = "auto"  # temperature slider: "auto" (only with a live Jupyter frontend) | True | False
on_error = "raise"  # bad data rows: "raise" or "skip"

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
from workbench.data import load_data
from workbench.models import DEMO_NAMES, load_demo_model, load_reward_model, score_pairs
from workbench.reports import escape_text, setup_notebook, show_table

setup_notebook()
audit_args = dict(
    n_bins=n_bins, strategy=strategy, orientation=orientation, seed=seed, band=band, test_size=test_size, n_boot=n_boot
)

# %% [markdown]
# ## Load and score

# %%
rm = load_reward_model(model)
pairs = load_data(data, on_error=on_error).sample(sample_size or None, seed=seed)
scores = score_pairs(rm, pairs, progress=False)
display(
    HTML(
        f"<p><b>Model</b> <code>{escape_text(rm.name)}</code> (fingerprint <code>{rm.fingerprint[:16]}</code>), "
        f"<b>data</b> <code>{escape_text(pairs.source)}</code>: {len(pairs)} pairs, "
        f"{pairs.n_skipped} rows skipped, {scores.n_truncated} pairs with a truncated response</p>"
    )
)

# %% [markdown]
# ## Metrics

# %%
audit = calibration_audit(scores, **audit_args)
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
# ## Before and after recalibration (held-out pairs)

# %%
direction = "over" if audit.temperature > 1 else "under"
display(
    HTML(
        f"<p>Fitted on {audit.comparison.n_fit} pairs, evaluated on {audit.comparison.n_test}: "
        f"<b>T = {audit.temperature:.3f}</b> ({direction}-confident margins)</p>"
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
    audit_smooth = calibration_audit(score_pairs(rm_smooth, pairs, progress=False), **audit_args)
    audits = {f"{model} (no smoothing)": audit, f"{model} (label smoothing {label_smoothing:g})": audit_smooth}
    show_table(compare_audits(audits))
    plot_audits(audits)
    plt.show()

# %% [markdown]
# ## Verdicts for the report

# %%
audit.publish(smoothed=audit_smooth, label_smoothing=label_smoothing)
show_table(audit.verdicts_frame())

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
