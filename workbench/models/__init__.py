"""Reward models: load any RM behind one spec, format its inputs, score pairs with a cache, train demo RMs.

The public surface of :mod:`workbench.models`; the modules underneath are

* :mod:`~workbench.models.loading`: :func:`load_reward_model`, from a spec to an adapter;
* :mod:`~workbench.models.adapters`: the adapters (:class:`SequenceClassifierRM`,
  :class:`ValueHeadRM`, :class:`CallableRM`, :class:`PrecomputedScoresRM`);
* :mod:`~workbench.models.formatting`: how a conversation becomes the exact model input;
* :mod:`~workbench.models.scoring` and :mod:`~workbench.models.batching`: the batched,
  cached scoring engine (:func:`score_texts`, :func:`score_pairs`);
* :mod:`~workbench.models.cache` and :mod:`~workbench.models.fingerprint`: the persistent
  score cache and the model fingerprints that key it;
* :mod:`~workbench.models.training` and :mod:`~workbench.models.demo`: the Bradley-Terry
  value-head trainer and the embedded ``demo-clean`` / ``demo-biased`` RMs.
"""

from workbench.models.adapters import (
    POOLINGS,
    VALUE_HEAD_CONFIG,
    VALUE_HEAD_WEIGHTS,
    CallableRM,
    PrecomputedScoresRM,
    RewardModel,
    SegmentedIds,
    SequenceClassifierRM,
    TransformerRM,
    ValueHeadConfig,
    ValueHeadRM,
    default_max_length,
    linear_head,
    pool_hidden,
)
from workbench.models.batching import plan_batches
from workbench.models.cache import ScoreCache, score_key
from workbench.models.demo import (
    DEMO_NAMES,
    DEMO_TRAINING_CONFIGS,
    demo_model_dir,
    demo_training_config,
    demo_training_data,
    load_demo_model,
    train_demo_model,
)
from workbench.models.distributed import ENGINES, StreamResult, score_to_parquet
from workbench.models.fingerprint import (
    file_digest,
    folder_fingerprint,
    json_fingerprint,
    sha256_bytes,
    state_dict_fingerprint,
)
from workbench.models.formatting import FORMAT_STYLES, Formatter, Message, TextTemplate, cache_text, conversation
from workbench.models.loading import load_reward_model, model_spec, parse_model_args, spec_fingerprint
from workbench.models.remote import (
    REMOTE_SCHEMES,
    HTTPRewardModel,
    RemoteRM,
    RemoteScoringError,
    TEIRewardModel,
    VLLMRewardModel,
)
from workbench.models.scoring import (
    STRATEGIES,
    PairScores,
    ScoreResult,
    load_sharded,
    replicate,
    resolve_devices,
    score_pairs,
    score_texts,
)
from workbench.models.training import (
    TrainingConfig,
    TrainingResult,
    bradley_terry_loss,
    embed_texts,
    train_value_head,
)

__all__ = [
    # loading
    "load_reward_model",
    "model_spec",
    "parse_model_args",
    "spec_fingerprint",
    # adapters
    "RewardModel",
    "TransformerRM",
    "SequenceClassifierRM",
    "SegmentedIds",
    "ValueHeadRM",
    "ValueHeadConfig",
    "CallableRM",
    "PrecomputedScoresRM",
    "POOLINGS",
    "VALUE_HEAD_CONFIG",
    "VALUE_HEAD_WEIGHTS",
    "default_max_length",
    "linear_head",
    "pool_hidden",
    # formatting
    "FORMAT_STYLES",
    "Formatter",
    "Message",
    "TextTemplate",
    "cache_text",
    "conversation",
    # scoring
    "STRATEGIES",
    "PairScores",
    "ScoreResult",
    "plan_batches",
    "score_pairs",
    "score_texts",
    "resolve_devices",
    "replicate",
    "load_sharded",
    # remote RMs and streaming / distributed scoring
    "REMOTE_SCHEMES",
    "RemoteRM",
    "RemoteScoringError",
    "TEIRewardModel",
    "VLLMRewardModel",
    "HTTPRewardModel",
    "ENGINES",
    "StreamResult",
    "score_to_parquet",
    # cache and fingerprints
    "ScoreCache",
    "score_key",
    "file_digest",
    "folder_fingerprint",
    "json_fingerprint",
    "sha256_bytes",
    "state_dict_fingerprint",
    # training and demo models
    "TrainingConfig",
    "TrainingResult",
    "bradley_terry_loss",
    "embed_texts",
    "train_value_head",
    "DEMO_NAMES",
    "DEMO_TRAINING_CONFIGS",
    "demo_model_dir",
    "demo_training_config",
    "demo_training_data",
    "load_demo_model",
    "train_demo_model",
]
