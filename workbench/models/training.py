"""A small Bradley-Terry reward-model trainer.

It trains the linear value head of a :class:`~workbench.models.adapters.ValueHeadRM`
on a frozen backbone: every distinct formatted text is embedded once (pooled
hidden state), then the head is fitted on the pair differences with the
Bradley-Terry loss

    loss = -[ y' log sigmoid(r_c - r_r) + (1 - y') log sigmoid(r_r - r_c) ],
    y'   = y (1 - eps) + (1 - y) eps,

where ``y`` is the (soft) label that the chosen response is preferred and
``eps`` the label-smoothing amount. Freezing the backbone keeps training of the
demo RMs to well under two minutes on two CPU cores; the result is a real
``AutoModel`` + value-head folder that every audit loads like any other RM.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.models.adapters import ValueHeadConfig, ValueHeadRM, linear_head, pooled_width
from workbench.models.batching import plan_batches
from workbench.models.fingerprint import sha256_bytes
from workbench.models.formatting import TextTemplate

__all__ = ["TrainingConfig", "TrainingResult", "bradley_terry_loss", "embed_texts", "train_value_head"]


@dataclass
class TrainingConfig:
    pooling: str = "mean"
    max_length: int = 256
    label_smoothing: float = 0.0
    weight_decay: float = 1e-3
    learning_rate: float = 0.05
    epochs: int = 300
    validation_fraction: float = 0.1
    seed: int = 0
    token_budget: int = 8192
    #: ``"mean+opening"`` pooling: how many tokens of the reply's opening are averaged
    opening_tokens: int = 4
    #: ``"mean+opening"`` pooling: the weight decay of the opening half of the head (None: ``weight_decay``)
    opening_weight_decay: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.opening_weight_decay is not None and self.pooling != "mean+opening":
            raise ValueError(
                f"opening_weight_decay applies to the 'mean+opening' pooling only, got pooling={self.pooling!r}"
            )


@dataclass
class TrainingResult:
    model: ValueHeadRM
    history: pd.DataFrame  # epoch, train_loss, train_accuracy, val_loss, val_accuracy
    config: TrainingConfig
    n_pairs: int
    seconds: float
    embed_seconds: float
    extra: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.history.copy()

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        h = self.history
        ax.plot(h["epoch"], h["train_loss"], label="train loss")
        if h["val_loss"].notna().any():
            ax.plot(h["epoch"], h["val_loss"], label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("Bradley-Terry loss")
        ax.legend()
        return ax


def bradley_terry_loss(margin, label, label_smoothing: float = 0.0):
    """Mean BT loss of margins ``r_c - r_r`` against soft labels, with label smoothing."""
    import torch.nn.functional as F

    target = label * (1 - label_smoothing) + (1 - label) * label_smoothing
    return -(target * F.logsigmoid(margin) + (1 - target) * F.logsigmoid(-margin)).mean()


def embed_texts(
    rm: ValueHeadRM, texts: list[str], token_budget: int = 8192, cache_file: str | Path | None = None
) -> np.ndarray:
    """Pooled hidden states of formatted texts, computed in length-sorted batches.

    With ``cache_file`` (an ``.npz`` keyed by text hash, specific to one backbone,
    :attr:`~workbench.models.adapters.ValueHeadRM.cache_pooling` and max length) embeddings
    computed before are reused, so models trained on the same texts with different labels,
    or with mean and mean-plus-opening pooling, embed them only once.
    """
    import torch

    keys = [sha256_bytes(t) for t in texts]
    cached: dict[str, np.ndarray] = {}
    if cache_file is not None and Path(cache_file).exists():
        with np.load(cache_file) as npz:
            cached = dict(zip(npz["keys"].tolist(), npz["emb"]))
    hidden = rm.config.hidden_size or rm.model.config.hidden_size
    width = pooled_width(rm.config.pooling, hidden)
    out = np.zeros((len(texts), pooled_width(rm.cache_pooling, hidden)), dtype=np.float32)
    todo = [i for i, k in enumerate(keys) if k not in cached]
    for i, k in enumerate(keys):
        if k in cached:
            out[i] = cached[k]
    ids = {i: rm.encode(texts[i])[0] for i in todo}
    with torch.inference_mode():
        for batch in plan_batches([len(ids[i]) for i in todo], token_budget=token_budget, max_batch_size=256):
            rows = [todo[j] for j in batch]
            input_ids, mask = rm.pad([ids[i] for i in rows])
            out[rows] = rm.pooled(input_ids, mask, rm.cache_pooling).cpu().numpy()
    if cache_file is not None and todo:
        for i in todo:
            cached[keys[i]] = out[i]
        cache_file = Path(cache_file)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.stem + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(cached)), emb=np.stack(list(cached.values())))
        os.replace(tmp, cache_file)  # atomic: readers see the old or the new file
    return out[:, :width]


def train_value_head(
    pairs,
    backbone: str | Path,
    out_dir: str | Path | None = None,
    config: TrainingConfig | None = None,
    *,
    name: str | None = None,
    template: TextTemplate | None = None,
    embedding_cache: str | Path | None = None,
) -> TrainingResult:
    """Train a value head on a frozen ``AutoModel`` backbone from preference pairs.

    ``pairs`` is a :class:`~workbench.data.preferences.PreferenceSet` or a DataFrame
    with prompt, chosen, rejected and optionally label and history.
    ``embedding_cache`` is a folder where backbone embeddings are kept between runs.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    config = config or TrainingConfig()
    frame = pairs.frame if hasattr(pairs, "frame") else pairs
    for col in ("prompt", "chosen", "rejected"):
        if col not in frame.columns:
            raise ValueError(f"training pairs need a {col!r} column")
    if len(frame) < 2:
        raise ValueError("need at least 2 training pairs")
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModel.from_pretrained(backbone)
    vh_config = ValueHeadConfig(
        pooling=config.pooling,
        hidden_size=model.config.hidden_size,
        format_style="template",
        template=(template or TextTemplate()).to_dict(),
        max_length=config.max_length,
        opening_tokens=config.opening_tokens,
        trained_by={"trainer": "workbench.models.training.train_value_head", **asdict(config)},
    )
    head = linear_head(vh_config.pooled_size)
    rm = ValueHeadRM(model, tokenizer, head, vh_config, name=name, device="cpu")

    histories = list(frame["history"]) if "history" in frame.columns else [None] * len(frame)
    chosen = [rm.format(p, r, h or None) for p, r, h in zip(frame["prompt"], frame["chosen"], histories)]
    rejected = [rm.format(p, r, h or None) for p, r, h in zip(frame["prompt"], frame["rejected"], histories)]
    unique = list(dict.fromkeys(chosen + rejected))
    index = {t: i for i, t in enumerate(unique)}
    t0 = time.perf_counter()
    cache_file = None
    if embedding_cache is not None:
        ident = sha256_bytes(
            str(Path(backbone).resolve()),
            rm.cache_pooling,
            str(rm.config.opening_tokens),
            str(config.max_length),
            json.dumps(rm.formatter.describe(), sort_keys=True),
        )
        cache_file = Path(embedding_cache) / f"{ident[:20]}.npz"
    emb = embed_texts(rm, unique, config.token_budget, cache_file)
    embed_seconds = time.perf_counter() - t0

    # Standardise features for a well-conditioned fit; folded back into the head afterwards.
    mu, sd = emb.mean(0), emb.std(0) + 1e-6
    z = torch.tensor((emb - mu) / sd)
    ci = torch.tensor([index[t] for t in chosen])
    ri = torch.tensor([index[t] for t in rejected])
    label = torch.tensor(
        frame["label"].to_numpy(dtype=np.float32) if "label" in frame.columns else np.ones(len(frame), np.float32)
    )

    rng = np.random.default_rng(config.seed)
    perm = rng.permutation(len(frame))
    n_val = int(round(config.validation_fraction * len(frame)))
    val, tr = torch.tensor(perm[:n_val]), torch.tensor(perm[n_val:])

    w = torch.zeros(z.shape[1], requires_grad=True)
    decay = torch.full((z.shape[1],), float(config.weight_decay))
    if config.pooling == "mean+opening" and config.opening_weight_decay is not None:
        decay[z.shape[1] // 2 :] = float(config.opening_weight_decay)
    opt = torch.optim.Adam([w], lr=config.learning_rate)
    rows = []
    for epoch in range(1, config.epochs + 1):
        opt.zero_grad()
        margin = (z[ci[tr]] - z[ri[tr]]) @ w
        loss = bradley_terry_loss(margin, label[tr], config.label_smoothing) + (decay * w**2).sum()
        loss.backward()
        opt.step()
        if epoch % 10 == 0 or epoch == config.epochs:
            with torch.no_grad():
                row = {
                    "epoch": epoch,
                    "train_loss": float(loss),
                    "train_accuracy": float(((margin > 0) == (label[tr] > 0.5)).float().mean()),
                }
                if n_val:
                    vm = (z[ci[val]] - z[ri[val]]) @ w
                    row["val_loss"] = float(bradley_terry_loss(vm, label[val], 0.0))
                    row["val_accuracy"] = float(((vm > 0) == (label[val] > 0.5)).float().mean())
                else:
                    row["val_loss"] = row["val_accuracy"] = float("nan")
                rows.append(row)

    with torch.no_grad():
        weight = w.detach().numpy() / sd
        head.weight.copy_(torch.tensor(weight[None, :], dtype=torch.float32))
        head.bias.fill_(float(-(weight * mu).sum()))
    if out_dir is not None:
        rm.save_pretrained(out_dir)
        rm = ValueHeadRM.from_pretrained(out_dir, name=name, device="cpu")
    else:
        rm = ValueHeadRM(model, tokenizer, head, vh_config, name=name, device="cpu")
    history = pd.DataFrame(rows)
    result = TrainingResult(rm, history, config, len(frame), time.perf_counter() - start, embed_seconds)
    if out_dir is not None:
        history.to_csv(Path(out_dir) / "training_history.csv", index=False)
        (Path(out_dir) / "training_summary.json").write_text(
            json.dumps(
                {
                    "n_pairs": len(frame),
                    "seconds": result.seconds,
                    "embed_seconds": embed_seconds,
                    "config": asdict(config),
                },
                indent=2,
            )
        )
    return result
