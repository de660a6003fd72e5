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
# # 06 · Ensembles: does combining reward models help, and does their disagreement flag mistakes?
#
# Several reward models (RMs) score the same preference pairs. Each member's scores are
# z-scored, then combined per response by the **mean**, the **worst case** (minimum) and the
# **uncertainty-penalised** reward `mean - lam * std`. We compare their pairwise accuracy
# with the members', ask whether the members' disagreement (std of their margins) predicts
# the ensemble's mistakes (AUROC), list the most disputed pairs, and export them to a
# relabel queue for human review. Definitions: `workbench.audits.ensemble` (aggregation, audit).
#
# **Verdicts** (family *ensemble*) are about the audited model `model`: its accuracy minus the other
# members' (primary: warn below −12 points, fail below −20), and, shown but not deciding, its accuracy
# minus the ensemble mean's, its agreement with the other members, and whether the members'
# disagreement flags its mistakes (AUROC). Intervals are 95% bootstrap intervals that resample prompts
# (or the data's topic/group column), paired: both sides of a difference use the same resampled prompts.
# A check passes when the interval lies on the safe side of the warn margin and is inconclusive when it
# straddles it. With bootstrap members (no audited model) the ensemble-level checks decide instead.
#
# **MC-dropout uncertainty** (descriptive, not graded): many teams have one RM, not several. For a
# transformer RM the notebook also scores every response `mc_dropout_passes` times with its dropout layers
# on (everything else in eval mode) and asks whether the spread of the margin over those passes flags the
# RM's own mistakes, next to the ensemble's disagreement, and which responses get a high reward *and* a
# high uncertainty (where a policy can exploit the RM's ignorance; they go to a second relabel queue).

# %% tags=["parameters"]
model = "demo-biased"  # the RM under audit; added to the members if missing
models = "demo-clean,demo-biased"  # comma-separated member specs (ignored when bootstrap_k is 2 or more)
data = "golden"  # preference pairs: golden | demo-eval | path | save_to_disk folder | hf:NAME
lam = 1.0  # weight of the std penalty in mean - lam * std
sample_size = 0  # pairs to evaluate (0 for all)
seed = 0  # seed for sampling, bootstrap resampling and bootstrap members
bootstrap_k = 0  # 2 or more: train this many bootstrap members instead of using models
bootstrap_data = "demo-train-biased"  # training pairs for bootstrap members
bootstrap_pairs = 300  # training pairs drawn for bootstrap members
n_boot = 1000  # bootstrap resamples for confidence intervals
top_k = 10  # top-disagreement pairs shown
queue_size = 20  # pairs exported to the relabel queue
output_dir = ""  # folder for the relabel queue (workbench audit: its --out); empty: reports/06_ensemble
split = None  # split of a Hugging Face dataset (hf:NAME or a save_to_disk folder); None: the spec's own or the only one
columns = ""  # input columns under other names, in the form of the CLI option --columns; "": the schema names
on_error = "skip"  # bad data rows: "skip" (counted by reason; notebook 00 grades the share) or "raise" (--strict)
mc_dropout_passes = 8  # stochastic passes with dropout on for the audited model (0 to skip MC dropout)
mc_dropout_sample = 40  # pairs scored with MC dropout, of the evaluated ones (0: all; 2 x passes forwards each)
mc_dropout_rate = None  # dropout rate for the passes; None keeps each layer's own (the demo RMs: 0.1)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import HTML, Markdown, display

from workbench.audits.ensemble import ensemble_audit, mc_dropout_audit
from workbench.data import load_data, parse_columns
from workbench.data.relabel import export_relabel_queue
from workbench.models import load_reward_model
from workbench.models.adapters import TransformerRM
from workbench.paths import default_output_dir
from workbench.reports.render import escape_text, show_table

# %%
pairs = load_data(data, on_error=on_error, split=split, columns=parse_columns(columns))
print(f"data {pairs.source}: {pairs.n_read} rows read, {pairs.n_skipped} skipped, {pairs.n_flagged} kept with a flag")
result = ensemble_audit(
    pairs,
    models,
    model=model,
    lam=lam,
    sample_size=sample_size,
    seed=seed,
    n_boot=n_boot,
    bootstrap_k=bootstrap_k,
    bootstrap_data=bootstrap_data,
    bootstrap_pairs=bootstrap_pairs,
    progress=False,
)
display(
    HTML(
        f"<p><b>Data</b> <code>{escape_text(result.source)}</code>: {len(result.items)} pairs; "
        f"{escape_text(result.origin)}; lam = {lam:g}</p>"
    )
)

# %% [markdown]
# ## Accuracy of the members and the aggregators

# %%
show_table(result.to_frame())
display(
    Markdown(
        f"Members disagree on the sign of the margin for **{result.disagreement_rate:.1%}** of the pairs. "
        f"Disagreement vs error: AUROC of the std of member margins for predicting a mistake of the mean "
        f"aggregator = **{result.auroc:.3f}** ({100 * result.ci:g}% prompt-clustered bootstrap CI "
        f"{result.auroc_ci[0]:.3f}-{result.auroc_ci[1]:.3f}; 0.5 = no signal)."
    )
)
for note in result.notes:
    display(HTML(f"<p><i>{escape_text(note)}</i></p>"))
show_table(result.member_disagreement.reset_index().rename(columns={"index": "member"}))
result.plot()
plt.show()

# %% [markdown]
# ## Pairs the members disagree on most

# %%
top = result.top_disagreements(top_k)
show_table(top, max_chars=200)

# %% [markdown]
# ## Relabel queue
#
# The most disputed pairs go to a relabel queue (`human_label` = `a`, `b` or `tie`; the two
# responses are shown in random order; `rm_preference` is the audited model's preference). `workbench.data.relabel.import_relabels` reads the
# labels back into a preference set with provenance columns.

# %%
# rm_preference in the queue: the audited model's margin (the ensemble mean for bootstrap members)
queue_path = (Path(output_dir) if output_dir else default_output_dir("06_ensemble")) / "relabel_queue_ensemble.csv"
queue = export_relabel_queue(result.relabel_candidates(queue_size), queue_path, seed=seed)
display(HTML(f"<p>Wrote <b>{len(queue)}</b> items to <code>{escape_text(str(queue_path))}</code></p>"))
show_table(
    queue[["queue_id", "source_id", "reason", "prompt", "response_a", "response_b", "rm_preference"]], max_chars=160
)

# %% [markdown]
# ## MC-dropout uncertainty of the audited model (descriptive)
#
# The audited model scores each response `mc_dropout_passes` times with its `torch.nn.Dropout` layers in
# train mode (pass *k* seeded by (`seed`, *k*); scores cached per pass, apart from the deterministic ones).
# Per pair: the mean margin over the passes, its spread (SD) and the flip probability
# (Φ(−|mean| / SD), how likely a pass ranks the pair the other way). The AUROC asks whether the spread ranks
# the pairs the model gets wrong (dropout off) above those it gets right (0.5 = no signal; prompt-clustered
# bootstrap interval); with an ensemble on the same pairs, its disagreement is scored for the same
# mistakes on the same resampled prompts. This section is descriptive: it does not enter the verdicts.
# Responses with a reward in the top quartile *and* a reward SD in the top quartile are flagged; their
# pairs go to `relabel_queue_mc_dropout.csv` in the same format as the ensemble's queue.

# %%
rm = load_reward_model(model) if model else None
if mc_dropout_passes and isinstance(rm, TransformerRM):
    mc = mc_dropout_audit(
        pairs,
        rm,
        passes=mc_dropout_passes,
        dropout=mc_dropout_rate,
        sample_size=sample_size,
        subsample=mc_dropout_sample,
        seed=seed,
        n_boot=n_boot,
        ensemble=result,
    )
    display(
        Markdown(
            f"MC dropout on **{len(mc.items)}** of the {len(result.items)} pairs"
            + (" (a subsample: `mc_dropout_sample`)" if len(mc.items) < len(result.items) else "")
            + f", {mc.passes} passes, dropout rate(s) {', '.join(f'{r:g}' for r in mc.rates)} in "
            f"{mc.n_dropout_modules} dropout layers; {mc.n_computed} texts scored, {mc.n_cached} from the cache. "
            f"The spread of the margin ranks the pairs {escape_text(rm.name)} gets wrong above those it gets right "
            f"with AUROC **{mc.auroc:.3f}** ({100 * mc.ci:g}% CI {mc.auroc_ci[0]:.3f}-{mc.auroc_ci[1]:.3f}); the flip "
            f"probability (how likely a pass ranks the pair the other way) with AUROC "
            f"**{mc.signals['auroc'].iloc[2]:.3f}** ({mc.signals['ci_low'].iloc[2]:.3f}-{mc.signals['ci_high'].iloc[2]:.3f}), "
            f"next to the margin's size alone (dropout off) at {mc.signals['auroc'].iloc[3]:.3f}."
        )
    )
    for note in mc.notes:
        display(HTML(f"<p><i>{escape_text(note)}</i></p>"))
    show_table(mc.to_frame())
    mc.plot()
    plt.show()
    mc_queue_path = queue_path.with_name("relabel_queue_mc_dropout.csv")
    mc_candidates = mc.relabel_candidates(queue_size)
    display(HTML(f"<p><b>{len(mc.high_uncertainty())}</b> high-reward, high-uncertainty responses</p>"))
    show_table(mc.high_uncertainty(top_k), max_chars=200)
    if len(mc_candidates):
        mc_queue = export_relabel_queue(mc_candidates, mc_queue_path, seed=seed)
        display(HTML(f"<p>Wrote <b>{len(mc_queue)}</b> items to <code>{escape_text(str(mc_queue_path))}</code></p>"))
else:
    display(
        HTML(
            "<p><i>MC dropout skipped: it needs a transformer RM as <code>model</code> and "
            "<code>mc_dropout_passes</code> of 2 or more.</i></p>"
        )
    )

# %% [markdown]
# ## Verdicts for the report

# %%
result.publish()
show_table(result.verdicts_frame())
for verdict in result.verdicts():
    display(
        HTML(
            f"<p><b>{escape_text(verdict.verdict.upper())}</b> ({escape_text(verdict.check)}): "
            f"{escape_text(verdict.sentence)}</p>"
        )
    )
