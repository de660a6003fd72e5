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
# # 03 · Token attribution: which words carry the reward?
#
# Explains the reward of sampled responses word by word with three methods:
#
# * **Integrated gradients** (Captum `LayerIntegratedGradients` on the embedding layer; baseline = pad/mask
#   token or zero embeddings with special tokens kept; the convergence delta is reported per explanation);
# * **occlusion** (delete one word, rescore: model-agnostic);
# * **SHAP** (Partition explainer with a text masker over the response's words).
#
# Then: the margin of a pair, agreement between methods, a faithfulness check (deleting the top words
# should drop the reward more than deleting random words), dataset-level trigger phrases joined with
# `workbench.audits.features.triggers`, and a browser widget. All text is HTML-escaped.

# %% tags=["parameters"]
model = "demo-biased"  # RM spec (IG needs a transformer RM; occlusion and SHAP work with any)
data = "demo-eval"  # data spec
sample_size = 20  # pairs every method explains (0: all)
sides = "chosen"  # responses explained per pair: "chosen" or "both" (chosen and rejected)
seed = 0
n_steps = 32  # IG integration steps
internal_batch_size = 16  # IG interpolation points per forward/backward pass
baseline = "pad"  # IG baseline: pad | mask | zeros
methods = "ig,occlusion,shap"
shap_max_evals = 200  # SHAP model evaluations per explanation
top_k = 10  # words / phrases shown in rankings
n_random = 10  # random deletions per k in the faithfulness check
faithfulness_examples = 40  # responses in the graded faithfulness check (the primary method also explains more pairs)
trigger_pairs = 200  # pairs scored for trigger mining (0 means all)
n_boot = 1000  # bootstrap resamples (prompts) for the faithfulness interval
split = None  # split of a Hugging Face dataset (hf:NAME or a save_to_disk folder); None: the spec's own or the only one
columns = ""  # input columns under other names, in the form of the CLI option --columns; "": the schema names
on_error = "skip"  # bad data rows: "skip" (counted by reason; notebook 00 grades the share) or "raise" (--strict)

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display

from workbench.audits.attribution import attribution_audit
from workbench.data import load_data, parse_columns
from workbench.models import load_reward_model
from workbench.reports.render import escape_text, show_table

# %%
rm = load_reward_model(model)
loaded = load_data(data, on_error=on_error, split=split, columns=parse_columns(columns))
pairs = loaded.sample(max(sample_size, faithfulness_examples) if sample_size else None, seed=seed)
print(f"data {pairs.source}: {pairs.n_read} rows read, {pairs.n_skipped} skipped, {pairs.n_flagged} kept with a flag")
trigger_sample = loaded.sample(trigger_pairs or None, seed=seed)  # scored for trigger mining
audit = attribution_audit(
    rm,
    pairs,
    sides=sides,
    methods=methods,
    seed=seed,
    n_steps=n_steps,
    internal_batch_size=internal_batch_size,
    baseline=baseline,
    shap_max_evals=shap_max_evals,
    top_k=top_k,
    n_random=n_random,
    faithfulness_examples=faithfulness_examples,
    explain_pairs=sample_size or None,
    trigger_data=trigger_sample,
    n_boot=n_boot,
    progress=True,
)
for note in audit.notes:
    display(HTML(f"<p>{escape_text(note)}</p>"))
display(
    HTML(
        f"<p><b>Model</b> <code>{escape_text(audit.model)}</code>, <b>data</b> <code>{escape_text(audit.source)}</code>: "
        f"{len(audit.pairs)} pairs, {audit.n_responses} responses ({escape_text(sides)}) explained with "
        f"{escape_text(', '.join(audit.methods))}</p>"
    )
)
show_table(audit.to_frame())

# %% [markdown]
# ## One response, every method
#
# Red words raise the reward, blue words lower it (hover for values).

# %%
for explanation in audit.example(0).values():
    display(HTML(explanation.to_html()))
audit.plot_example(0)
plt.show()

# %% [markdown]
# ## The margin of a pair
#
# The margin `r(chosen) - r(rejected)` is attributed as the chosen side's attributions minus the rejected
# side's (each integrated from its own baseline; IG is linear in the output). Its convergence delta is
# `delta_chosen - delta_rejected`.

# %%
margin = audit.margin
display(HTML(margin.to_html()))
margin.plot(k=top_k)
plt.show()
print(
    f"margin {margin.score:+.4f}, baseline margin {margin.baseline_score:+.4f}, "
    f"sum of attributions {margin.total_attribution:+.4f}, convergence delta {margin.convergence_delta:+.2e}"
)

# %% [markdown]
# ## Do the methods agree?
#
# Per response: Spearman correlation of the word attributions and Jaccard overlap of the top-5 words (by |attribution|).

# %%
if audit.agreements:
    show_table(audit.agreement_frame())
    audit.plot_agreement()
    plt.show()
    for agreement in audit.agreements:
        agreement.plot()
        plt.show()
else:
    print("one method only: nothing to compare")

# %% [markdown]
# ## Faithfulness: deletion curves
#
# Delete the k words with the largest attribution and rescore, against deleting k random words
# (`n_random` draws). A faithful explanation drops the reward more; AOPC is the mean drop over k. The
# first method's check uses `faithfulness_examples` responses: the chosen responses of the explained
# pairs and, to reach that number, of further pairs the first method alone explains (on the demo
# data 40 responses from about 30 topics, against about 17 for the 20 explained pairs); the other
# methods' curves use the responses they explain.
#
# **Verdict** (family *attribution*): the mean over explained responses of (top-k AOPC − random AOPC),
# in standard deviations of those responses' rewards, with a 95% bootstrap interval that resamples
# prompts (or topics). Harmful when low: pass when the interval lies above 0.05 SD, fail when it lies
# below 0 (the attributed words matter less than random ones), warn in between, inconclusive when it
# straddles 0.05. The first method decides the family; the others are shown.

# %%
show_table(audit.faithfulness)
audit.plot()
plt.show()
audit.publish()
show_table(audit.verdicts_frame())
for verdict in audit.verdicts():
    display(
        HTML(
            f"<p><b>{escape_text(verdict.verdict.upper())}</b> ({escape_text(verdict.check)}): "
            f"{escape_text(verdict.sentence)}</p>"
        )
    )

# %% [markdown]
# ## Dataset level: trigger phrases
#
# Mean attribution per word and bigram over all explained responses (phrases in at least 3 responses),
# joined with `mine_triggers` on a larger scored sample: n-grams that both go with higher reward across
# texts *and* carry attribution inside texts are strong shortcut candidates.

# %%
show_table(audit.phrases.head(top_k))
comparison = audit.comparison
show_table(pd.DataFrame([comparison.summary()]))
show_table(
    comparison.triggers[["rank", "ngram", "count", "cohens_d", "q_value", "attr_rank", "mean_attribution"]].head(top_k)
)
audit.plot_triggers()
plt.show()

# %% [markdown]
# ## Known-answer check: agreement words
#
# On the demo data, `attrs.a == 1` marks responses that open by agreeing with the user. For a sycophantic RM
# (`demo-biased`) an agreement word (right, agree, absolutely, exactly ...) should be among the top-5 attributed
# words more often than for `demo-clean` (rerun with `model="demo-clean"` to compare).

# %%
if audit.known_answer is not None:
    show_table(audit.known_answer)
else:
    print("this data set has no attrs column")

# %% [markdown]
# ## Browse the explanations

# %%
audit.browser()
