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
sample_size = 20  # pairs to explain
sides = "chosen"  # responses explained per pair: "chosen" or "both" (chosen and rejected)
seed = 0
n_steps = 32  # IG integration steps
internal_batch_size = 16  # IG interpolation points per forward/backward pass
baseline = "pad"  # IG baseline: pad | mask | zeros
methods = "ig,occlusion,shap"
shap_max_evals = 200  # SHAP model evaluations per explanation
top_k = 10  # words / phrases shown in rankings
n_random = 10  # random deletions per k in the faithfulness check
faithfulness_examples = 10  # responses per method in the faithfulness check
trigger_pairs = 200  # pairs scored for trigger mining (0 means all)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display

from workbench.audits.attribution.core import (
    AGREEMENT_WORDS,
    aggregate_attributions,
    compare_methods,
    compare_with_triggers,
    deletion_curve,
    deletion_summary,
    explanation_browser,
    make_explainer,
    margin_explanation,
    summary_frame,
    top_word_hit_rate,
)
from workbench.audits.features.triggers import mine_triggers
from workbench.data.shipped import load_data
from workbench.models.adapters import TransformerRM, load_reward_model
from workbench.models.scoring import score_pairs
from workbench.reports.render import escape_text, show_table

# %%
rm = load_reward_model(model)
pairs = load_data(data).sample(sample_size or None, seed=seed)
frame = pairs.frame.reset_index(drop=True)
if sides not in ("chosen", "both"):
    raise ValueError(f"sides must be 'chosen' or 'both', got {sides!r}")
side_names = ["chosen"] if sides == "chosen" else ["chosen", "rejected"]
prompts = list(frame["prompt"]) * len(side_names)
responses = [r for side in side_names for r in frame[side]]
histories = [h if isinstance(h, list) and h else None for h in frame["history"]] * len(side_names)
ids = [f"{i}/{side}" for side in side_names for i in frame["id"]]

options = {
    "ig": dict(n_steps=n_steps, internal_batch_size=internal_batch_size, baseline=baseline),
    "occlusion": {},
    "shap": dict(max_evals=shap_max_evals),
}
wanted = [m.strip() for m in methods.split(",") if m.strip()]
if "ig" in wanted and not isinstance(rm, TransformerRM):
    display(Markdown("IG needs a transformer RM; this one is not, so IG is skipped."))
    wanted.remove("ig")
explainers = {name: make_explainer(name, rm, **options.get(name, {})) for name in wanted}
explanations = {
    name: ex.attribute_many(prompts, responses, histories, ids=ids, progress=True) for name, ex in explainers.items()
}
primary = wanted[0]
display(
    Markdown(
        f"**Model** `{escape_text(rm.name)}`, **data** `{escape_text(pairs.source)}`: "
        f"{len(frame)} pairs, {len(responses)} responses ({sides}) explained with {', '.join(wanted)}"
    )
)
summary = pd.concat([summary_frame(v) for v in explanations.values()], ignore_index=True)
show_table(
    summary.groupby("method")[["seconds", "convergence_delta", "n_words"]]
    .agg(lambda s: s.abs().mean())
    .reset_index()
    .rename(columns={"seconds": "mean seconds", "convergence_delta": "mean |delta|", "n_words": "mean words"})
)

# %% [markdown]
# ## One response, every method
#
# Red words raise the reward, blue words lower it (hover for values).

# %%
example = 0
for name, exps in explanations.items():
    display(HTML(exps[example].to_html()))
fig, axes = plt.subplots(1, len(explanations), figsize=(5 * len(explanations), 3.8), squeeze=False)
for ax, (name, exps) in zip(axes[0], explanations.items()):
    exps[example].plot(k=top_k, ax=ax, title=name)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The margin of a pair
#
# The margin `r(chosen) - r(rejected)` is attributed as the chosen side's attributions minus the rejected
# side's (each integrated from its own baseline; IG is linear in the output). Its convergence delta is
# `delta_chosen - delta_rejected`.

# %%
if sides == "both":
    margin = margin_explanation(explanations[primary][example], explanations[primary][example + len(frame)])
else:
    row = frame.iloc[example]
    margin = explainers[primary].attribute_pair(
        row["prompt"], row["chosen"], row["rejected"], histories[example], example_id=row["id"]
    )
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
names = list(explanations)
agreements = [
    compare_methods(explanations[a], explanations[b], k=5, seed=seed)
    for i, a in enumerate(names)
    for b in names[i + 1 :]
]
if agreements:
    show_table(pd.concat([a.summary() for a in agreements], ignore_index=True))
    for a in agreements:
        a.plot()
        plt.show()
else:
    print("one method only: nothing to compare")

# %% [markdown]
# ## Faithfulness: deletion curves
#
# Delete the k words with the largest attribution and rescore, against deleting k random words
# (`n_random` draws), for the first `faithfulness_examples` responses. A faithful explanation drops the
# reward more; AOPC is the mean drop over k.

# %%
curves = [
    deletion_curve(e, rm, ks=(1, 2, 3, 5), n_random=n_random, seed=seed)
    for exps in explanations.values()
    for e in exps[:faithfulness_examples]
    if e.n_words >= 5
]
faith = deletion_summary(curves, seed=seed)
show_table(faith)
fig, ax = plt.subplots(figsize=(6, 3.5))
for method, g in faith[faith["k"] != "AOPC"].groupby("method", sort=False):
    k = g["k"].astype(int)
    ax.plot(k, g["drop_top"], "o-", label=f"top-k by {method}")
    ax.fill_between(k, g["top_ci_low"], g["top_ci_high"], alpha=0.2)
rnd = faith[faith["k"] != "AOPC"].groupby("k", sort=False)["drop_random"].mean()
ax.plot(rnd.index.astype(int), rnd.to_numpy(), "s--", color="gray", label="random k words")
ax.set_xlabel("words deleted (k)")
ax.set_ylabel("mean reward drop")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ## Dataset level: trigger phrases
#
# Mean attribution per word and bigram over all explained responses (phrases in at least 3 responses),
# joined with `mine_triggers` on a larger scored sample: n-grams that both go with higher reward across
# texts *and* carry attribution inside texts are strong shortcut candidates.

# %%
agg = aggregate_attributions(explanations[primary], ngram_range=(1, 2), min_count=3)
show_table(agg.head(top_k))
mined_pairs = load_data(data).sample(trigger_pairs or None, seed=seed)
mined_scores = score_pairs(rm, mined_pairs).to_frame()
mframe = mined_pairs.frame
texts = list(mframe["chosen"]) + list(mframe["rejected"])
rewards = np.concatenate([mined_scores["chosen_score"], mined_scores["rejected_score"]])
triggers = mine_triggers(texts, rewards, ngram_range=(1, 2), min_count=5, top_k=30, n_boot=200, seed=seed)
comparison = compare_with_triggers(agg, triggers, k=top_k)
show_table(pd.DataFrame([comparison.summary()]))
show_table(
    comparison.triggers[["rank", "ngram", "count", "cohens_d", "q_value", "attr_rank", "mean_attribution"]].head(top_k)
)
comparison.plot()
plt.show()

# %% [markdown]
# ## Known-answer check: agreement words
#
# On the demo data, `attrs.a == 1` marks responses that open by agreeing with the user. For a sycophantic RM
# (`demo-biased`) an agreement word (right, agree, absolutely, exactly ...) should be among the top-5 attributed
# words more often than for `demo-clean` (rerun with `model="demo-clean"` to compare).

# %%
if "attrs" in frame.columns:
    agree = np.array([a[side]["a"] == 1 for side in side_names for a in frame["attrs"]])
    rows = []
    for name, exps in explanations.items():
        for label, sel in (("agree opener", agree), ("no agree opener", ~agree)):
            chosen = [e for e, s in zip(exps, sel) if s]
            rows.append(
                {
                    "method": name,
                    "responses": label,
                    "n": len(chosen),
                    "agreement word in top 5": top_word_hit_rate(chosen, AGREEMENT_WORDS, k=5) if chosen else np.nan,
                }
            )
    show_table(pd.DataFrame(rows))
else:
    print("this data set has no attrs column")

# %% [markdown]
# ## Browse the explanations

# %%
explanation_browser(explanations, k=top_k)
