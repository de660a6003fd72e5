"""The scoring engine: batched, cached, length-sorted scoring of (prompt, response) pairs.

For transformer RMs every text is tokenized once (which also counts truncation),
looked up in the persistent :class:`~workbench.models.cache.ScoreCache`, and the
misses are sorted by length and packed into batches that fill a *token budget*
(``batch size x longest sequence <= token_budget``), so padding stays low and
memory stays bounded. Batches run under ``torch.inference_mode``; each finished
batch is written to the cache at once, so an interrupted run resumes where it
stopped.

Remote RMs (:mod:`~workbench.models.remote`) go through the same steps: their
``input_length`` sorts and packs the texts, each batch becomes one request, and
requests run concurrently while finished ones are cached as they arrive.

Data-parallel scoring: ``devices=["cuda:0", "cuda:1", ...]`` (or ``"all"``: every
visible GPU) gives each device its own replica of the model and a worker thread
that takes the next batch from a shared queue (longest first), so devices stay
busy; only the calling thread writes the shared cache. Models too large for one
GPU load sharded with :func:`load_sharded` (``device_map="auto"``).
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.models.adapters import SequenceClassifierRM, TransformerRM, dtype_keyword
from workbench.models.batching import plan_batches
from workbench.models.cache import ScoreCache, score_key
from workbench.models.formatting import Message, cache_text
from workbench.models.loading import load_reward_model

__all__ = [
    "STRATEGIES",
    "ScoreResult",
    "PairScores",
    "plan_batches",
    "score_texts",
    "score_pairs",
    "resolve_devices",
    "replicate",
    "load_sharded",
]

STRATEGIES = ("token_budget", "fixed")
#: padded tokens per batch unless the call or the RM's ``token_budget`` option says otherwise
DEFAULT_TOKEN_BUDGET = 16384


@dataclass
class ScoreResult:
    """Scores of a list of (prompt, response) pairs, in input order."""

    scores: np.ndarray
    truncated: np.ndarray
    n_tokens: np.ndarray
    from_cache: np.ndarray
    seconds: float
    model: dict = field(default_factory=dict)
    n_batches: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    per_device: dict = field(default_factory=dict)  # device -> texts computed there (data-parallel runs)

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())

    @property
    def n_cached(self) -> int:
        return int(self.from_cache.sum())

    @property
    def n_computed(self) -> int:
        return int((~self.from_cache).sum())

    @property
    def padding_fraction(self) -> float:
        """Share of the tokens fed to the model that were padding (computed texts only)."""
        return float(1 - self.real_tokens / self.padded_tokens) if self.padded_tokens else 0.0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "score": self.scores,
                "n_tokens": self.n_tokens,
                "truncated": self.truncated,
                "from_cache": self.from_cache,
            }
        )

    def summary(self) -> dict:
        return {
            "n": int(len(self.scores)),
            "n_truncated": self.n_truncated,
            "n_cached": self.n_cached,
            "n_computed": self.n_computed,
            "n_batches": self.n_batches,
            "padding_fraction": round(self.padding_fraction, 4),
            "seconds": round(self.seconds, 3),
            **({"per_device": dict(self.per_device)} if self.per_device else {}),
        }


def resolve_devices(devices) -> list[str]:
    """The devices of a data-parallel run.

    ``"all"`` (or ``"auto"``) is every visible CUDA device (``CUDA_VISIBLE_DEVICES``
    decides), or ``["cpu"]`` without one; an int ``n`` is the first ``n`` GPUs; a
    list is taken as given (``["cpu", "cpu"]`` runs two CPU workers).
    """
    import torch

    if devices in ("all", "auto"):
        n = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]
    if isinstance(devices, int) and not isinstance(devices, bool):
        n = torch.cuda.device_count()
        if not 1 <= devices <= max(n, 0):
            raise ValueError(f"devices={devices}: only {n} CUDA device(s) are visible")
        return [f"cuda:{i}" for i in range(devices)]
    if isinstance(devices, str):
        return [devices]
    out = [str(d) for d in devices]
    if not out:
        raise ValueError("devices is empty; pass 'all', a number of GPUs or a list such as ['cuda:0', 'cuda:1']")
    return out


def replicate(rm: TransformerRM, device) -> TransformerRM:
    """A copy of a transformer RM whose modules live on ``device`` (the tokenizer is shared).

    Modules are copied with one memo, so a head that is part of the model (a decoder's
    ``score`` layer) stays part of the copied model.
    """
    import torch

    if not isinstance(rm, TransformerRM):
        raise TypeError(f"only transformer RMs can be replicated on devices, got {type(rm).__name__}")
    rm.load_weights()  # a lazily loaded RM: the replicas copy its weights
    if getattr(rm.model, "hf_device_map", None) and len(set(rm.model.hf_device_map.values())) > 1:
        raise ValueError(f"{rm.name} is sharded over several devices (device_map); it cannot also be replicated")
    device = torch.device(device)
    clone = copy.copy(rm)
    memo: dict = {id(rm.tokenizer): rm.tokenizer}
    modules = {k: v for k, v in vars(rm).items() if isinstance(v, torch.nn.Module)}
    for name, module in modules.items():
        setattr(clone, name, copy.deepcopy(module, memo))
    for name in modules:
        getattr(clone, name).to(device)
    clone.device = device
    return clone


def load_sharded(spec, *, device_map="auto", dtype=None, trust_remote_code: bool = False, **kwargs):
    """Load a sequence-classification RM split over several devices (``device_map``, needs ``accelerate``).

    ``device_map`` goes to ``from_pretrained`` as is (``"auto"``, ``"balanced"``, a
    dict ...). Inputs go to the device of the input embeddings; accelerate's hooks
    move activations between shards. Scores equal those of the model on one device.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if dtype in (None, "auto"):
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    common = dict(trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(spec, **common)
    model = AutoModelForSequenceClassification.from_pretrained(
        spec, device_map=device_map, **{dtype_keyword(): dtype}, **common
    )
    first = model.get_input_embeddings().weight.device
    previous = model.__dict__.get("to")
    # The adapter moves its model to one device; a sharded model must stay where device_map put it.
    model.__dict__["to"] = lambda *args, **kw: model
    try:
        rm = SequenceClassifierRM(model, tokenizer, path=str(spec), device=str(first), dtype=dtype, **kwargs)
    finally:
        if previous is None:
            del model.__dict__["to"]
        else:
            model.__dict__["to"] = previous
    return rm


def _data_parallel(
    replicas: Sequence[TransformerRM], batches, token_ids, padding_side
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Run batches on several replicas, one thread each; yield ``(replica, batch index, scores)``."""
    work: queue.Queue = queue.Queue()
    for k in range(len(batches)):
        work.put(k)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def worker(w: int, rep: TransformerRM) -> None:
        import torch

        try:
            while not stop.is_set():
                try:
                    k = work.get_nowait()
                except queue.Empty:
                    return
                with torch.inference_mode():
                    values = rep.forward_ids([token_ids[i] for i in batches[k]], padding_side=padding_side)
                results.put(("ok", w, k, values))
        except BaseException as exc:  # handed to the calling thread
            results.put(("error", w, None, exc))
        finally:
            results.put(("done", w, None, None))

    threads = [
        threading.Thread(target=worker, args=(w, rep), name=f"score-{rep.device}", daemon=True)
        for w, rep in enumerate(replicas)
    ]
    for t in threads:
        t.start()
    try:
        running = len(threads)
        while running:
            kind, w, k, payload = results.get()
            if kind == "done":
                running -= 1
            elif kind == "error":
                raise payload
            else:
                yield w, k, payload
    finally:
        stop.set()
        for t in threads:
            t.join()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=not enabled or total == 0, leave=False)


def score_texts(
    rm,
    prompts: Sequence[str],
    responses: Sequence[str],
    histories: Sequence[Sequence[Message] | None] | None = None,
    *,
    cache: ScoreCache | str | None = "default",
    strategy: str = "token_budget",
    token_budget: int | None = None,
    max_batch_size: int = 128,
    batch_size: int = 32,
    padding_side: str | None = None,
    progress: bool = True,
    desc: str | None = None,
    devices=None,
    variant: str = "",
) -> ScoreResult:
    """Score ``(prompt, response)`` pairs with a reward model.

    Parameters
    ----------
    rm : RewardModel or spec
        Anything :func:`~workbench.models.loading.load_reward_model` accepts.
    cache : ScoreCache, "default" or None
        ``"default"`` uses the checkout's shared cache; ``None`` disables caching.
    strategy : {"token_budget", "fixed"}
        ``"token_budget"`` sorts by length and fills batches up to ``token_budget``
        padded tokens (default: the RM's ``token_budget`` option, else 16384; at most
        ``max_batch_size`` texts); ``"fixed"`` uses batches of
        ``batch_size`` in data order (for comparison; ``batch_size=1`` is a per-example loop).
    padding_side : {"right", "left"}, optional
        Overrides the model's padding side (scores do not depend on it).
    devices : "all", int or list of devices, optional
        Data-parallel scoring of a transformer RM: one replica and worker per device
        (see :func:`resolve_devices`); one device (or ``None``) scores in this thread.
    variant : str
        Scores computed in a non-default way (one stochastic MC-dropout pass:
        :mod:`workbench.audits.ensemble.mc_dropout`) are cached under keys that include it,
        never mixed with the deterministic scores (``""``).
    """
    rm = load_reward_model(rm)
    if token_budget is None:
        token_budget = getattr(rm, "token_budget", None) or DEFAULT_TOKEN_BUDGET
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    n = len(prompts)
    if len(responses) != n:
        raise ValueError(f"prompts and responses differ in length ({n} vs {len(responses)})")
    histories = list(histories) if histories is not None else [None] * n
    if len(histories) != n:
        raise ValueError(f"histories has {len(histories)} entries for {n} prompts")
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if not isinstance(p, str) or not isinstance(r, str):
            raise TypeError(
                f"item {i}: prompt and response must be strings, got {type(p).__name__} and {type(r).__name__}"
            )
    if cache == "default":
        cache = ScoreCache()
    start = time.perf_counter()

    formatted = [rm.format(p, r, h) for p, r, h in zip(prompts, responses, histories)]
    texts = [cache_text(f) for f in formatted]
    keys = [score_key(rm.fingerprint, rm.max_length, t, variant) for t in texts]
    scores = np.full(n, np.nan)
    from_cache = np.zeros(n, dtype=bool)
    truncated = np.zeros(n, dtype=bool)
    n_tokens = np.full(n, -1, dtype=np.int64)

    is_transformer = isinstance(rm, TransformerRM)
    length_of = getattr(rm, "input_length", None)  # remote RMs: tokens, or an estimate
    token_ids: dict[int, list[int]] = {}
    if is_transformer:
        # Tokenize every text: truncation is counted for cached texts too.
        for i, f in enumerate(formatted):
            ids, cut = rm.encode(f)
            token_ids[i] = ids
            truncated[i] = cut
            n_tokens[i] = len(ids)
    elif length_of is not None and getattr(rm, "exact_lengths", False):
        for i, f in enumerate(formatted):
            n_tokens[i] = length_of(f)
            truncated[i] = rm.max_length is not None and n_tokens[i] > rm.max_length

    if cache is not None:
        hits = cache.get_many(keys)
        for i, k in enumerate(keys):
            if k in hits:
                scores[i] = hits[k]
                from_cache[i] = True

    # One computation per distinct key.
    todo: dict[str, list[int]] = {}
    for i in np.flatnonzero(~from_cache):
        todo.setdefault(keys[i], []).append(int(i))
    first = [idx[0] for idx in todo.values()]

    if strategy == "fixed":
        batches = [first[s : s + batch_size] for s in range(0, len(first), batch_size)]
    elif is_transformer:
        local = plan_batches(
            [len(token_ids[i]) for i in first], token_budget=token_budget, max_batch_size=max_batch_size
        )
        batches = [[first[j] for j in b] for b in local]
    elif length_of is not None:
        lengths = [int(n_tokens[i]) if n_tokens[i] >= 0 else length_of(formatted[i]) for i in first]
        local = plan_batches(lengths, token_budget=token_budget, max_batch_size=max_batch_size)
        batches = [[first[j] for j in b] for b in local]
    else:
        batches = [first[s : s + max_batch_size] for s in range(0, len(first), max_batch_size)]

    padded = real = 0
    per_device: dict[str, int] = {}

    def finish(batch: list[int], values) -> None:
        nonlocal padded, real
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(batch),):
            raise ValueError(f"{rm.name}: returned {values.size} scores for a batch of {len(batch)}")
        if not np.all(np.isfinite(values)):
            bad = batch[int(np.flatnonzero(~np.isfinite(values))[0])]
            raise FloatingPointError(f"{rm.name}: non-finite score for item {bad} (prompt {prompts[bad][:60]!r})")
        if is_transformer:
            padded += len(batch) * max(len(token_ids[i]) for i in batch)
            real += sum(len(token_ids[i]) for i in batch)
        new = {}
        for i, v in zip(batch, values):
            for j in todo[keys[i]]:
                scores[j] = v
            new[keys[i]] = v
        if cache is not None:
            cache.put_many(new)
        bar.update(len(batch))

    replicas = []
    if is_transformer and devices is not None and batches:
        targets = resolve_devices(devices)
        if len(targets) > 1:
            # The model itself serves its own device once; every other worker gets a copy.
            own = targets.index(str(rm.device)) if str(rm.device) in targets else -1
            replicas = [rm if w == own else replicate(rm, t) for w, t in enumerate(targets)]
    bar = _progress(len(first), desc or f"scoring with {rm.name}", progress)
    try:
        if replicas:
            for w, k, values in _data_parallel(replicas, batches, token_ids, padding_side):
                finish(batches[k], values)
                name = f"{w}:{replicas[w].device}"
                per_device[name] = per_device.get(name, 0) + len(batches[k])
        elif is_transformer:
            import torch

            for batch in batches:
                with torch.inference_mode():
                    values = rm.forward_ids([token_ids[i] for i in batch], padding_side=padding_side)
                finish(batch, values)
        elif hasattr(rm, "score_batches"):
            # Remote RMs: requests run concurrently; each finished one is cached at once.
            for k, values in rm.score_batches([[formatted[i] for i in b] for b in batches]):
                finish(batches[k], values)
        else:
            for batch in batches:
                finish(batch, rm.score_items([(prompts[i], responses[i], histories[i]) for i in batch]))
    finally:
        bar.close()

    return ScoreResult(
        scores=scores,
        truncated=truncated,
        n_tokens=n_tokens,
        from_cache=from_cache,
        seconds=time.perf_counter() - start,
        model=rm.describe(),
        n_batches=len(batches),
        padded_tokens=padded,
        real_tokens=real,
        per_device=per_device,
    )


@dataclass
class PairScores:
    """Rewards of the chosen and rejected response of every pair."""

    frame: pd.DataFrame  # id, chosen_score, rejected_score, margin, label, truncated flags; subset, category, group
    model: dict
    chosen_result: ScoreResult
    rejected_result: ScoreResult

    @property
    def margin(self) -> np.ndarray:
        return self.frame["margin"].to_numpy()

    @property
    def label(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=float)

    @property
    def n_truncated(self) -> int:
        return int((self.frame["chosen_truncated"] | self.frame["rejected_truncated"]).sum())

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def summary(self) -> dict:
        return {
            "pairs": int(len(self.frame)),
            "pairs_with_truncation": self.n_truncated,
            "texts_from_cache": self.chosen_result.n_cached + self.rejected_result.n_cached,
            "texts_computed": self.chosen_result.n_computed + self.rejected_result.n_computed,
            "seconds": round(self.chosen_result.seconds, 3),
        }


def score_pairs(rm, data, **kwargs) -> PairScores:
    """Score both responses of every pair in a :class:`PreferenceSet` or DataFrame in one engine call."""
    frame = data.frame if hasattr(data, "frame") else data
    rm = load_reward_model(rm)
    n = len(frame)
    hist = list(frame["history"]) if "history" in frame.columns else [None] * n
    hist = [h if isinstance(h, list) and h else None for h in hist]
    result = score_texts(
        rm,
        list(frame["prompt"]) * 2,
        list(frame["chosen"]) + list(frame["rejected"]),
        hist * 2,
        **kwargs,
    )
    half = lambda arr: (arr[:n], arr[n:])  # noqa: E731
    (sc, sr), (tc, tr) = half(result.scores), half(result.truncated)
    (cc, cr), (kc, kr) = half(result.from_cache), half(result.n_tokens)
    out = pd.DataFrame(
        {
            "id": frame["id"].to_numpy() if "id" in frame.columns else np.arange(n),
            "chosen_score": sc,
            "rejected_score": sr,
            "margin": sc - sr,
            "label": frame["label"].to_numpy(dtype=float) if "label" in frame.columns else np.ones(n),
            "chosen_truncated": tc,
            "rejected_truncated": tr,
        }
    )
    for col in ("subset", "category", "group"):
        if col in frame.columns:
            out[col] = frame[col].to_numpy()

    def part(s, t, c, k):
        return ScoreResult(
            s, t, k, c, result.seconds, result.model, result.n_batches, result.padded_tokens, result.real_tokens
        )

    return PairScores(out, result.model, part(sc, tc, cc, kc), part(sr, tr, cr, kr))
