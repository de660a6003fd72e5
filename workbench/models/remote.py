"""Reward models behind an inference server: TEI, vLLM and a generic JSON endpoint.

Specs (``load_reward_model`` dispatches them here):

``tei:URL``
    Hugging Face Text Embeddings Inference serving a sequence-classification RM.
    Model info from ``GET URL/info`` (``model_id``, ``model_sha``, ``max_input_length``);
    scores from ``POST URL/predict`` with ``{"inputs": [[text] | [context, response], ...],
    "raw_scores": true, "truncate": true, "truncation_direction": "Left"}``, which answers one list of
    ``{"score", "label"}`` per input. ``raw_scores`` keeps the logit (no sigmoid).
``vllm:URL``
    vLLM started with ``--runner pooling``. Model info from ``GET URL/v1/models``
    (``id``, ``root``, ``max_model_len``); scores from ``POST URL/classify`` (default:
    ``{"model", "input": [...], "use_activation": false}`` answers ``data[i].probs``),
    ``URL/pooling`` (reward models: ``data[i].data`` is one value or one row per token,
    the last token's value is the reward) or ``URL/score`` (``{"text_1": [...],
    "text_2": [...]}`` for ``format_style="pair"``, answers ``data[i].score``).
``http:URL``
    A generic JSON endpoint. ``GET URL/info`` answers ``{"model_id": str, "revision":
    str, "max_length": int}`` (all optional but ``model_id``; without it pass
    ``revision=``); ``POST URL/score`` takes ``{"inputs": [text | [context, response],
    ...]}`` and answers ``{"scores": [float, ...]}`` (or a bare list) in input order.
    ``info_path``, ``score_path``, ``input_key`` and ``output_key`` adapt the mapping.

Options can follow the URL after ``#``: ``vllm:http://gpu1:8000#endpoint=pooling&revision=v2``
(the fragment never reaches the server).

Every adapter formats conversations on the client (``format_style``: ``"template"``
by default, ``"pair"``, or ``"chat_template"`` with ``tokenizer=``), so the formatted
text is the cache key exactly as for a local model. The fingerprint hashes what the
server reports about its model (id and revision), the optional user ``revision``,
the endpoint, the formatting and the length limit; never the client code.

Requests run on an asyncio event loop in a background thread (safe inside Jupyter)
with at most ``max_concurrency`` in flight. 408/425/429/5xx answers, timeouts and
dropped connections are retried with exponential backoff (``Retry-After`` honoured);
other errors stop the run with a message naming the URL and the status. The scoring
engine sorts texts by length (tokens with ``tokenizer=``, else characters / 4), packs
them into requests within its token budget, and writes each finished request to the
score cache, so a run stopped by a dead server resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from urllib.parse import parse_qsl

import numpy as np

from workbench.models.adapters import RewardModel
from workbench.models.fingerprint import sha256_bytes
from workbench.models.formatting import Formatter, TextTemplate

__all__ = [
    "REMOTE_SCHEMES",
    "RETRY_STATUSES",
    "RemoteScoringError",
    "RemoteRM",
    "TEIRewardModel",
    "VLLMRewardModel",
    "HTTPRewardModel",
    "parse_remote_spec",
    "load_remote_model",
]

REMOTE_SCHEMES = ("tei", "vllm", "http")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_FLOAT_OPTIONS = {"timeout", "backoff", "max_backoff"}
_INT_OPTIONS = {"max_concurrency", "max_retries", "batch_size"}
_BOOL_OPTIONS = {"truncate"}


class RemoteScoringError(RuntimeError):
    """A remote RM failed: the message names the URL, the status and what to do."""


def parse_remote_spec(spec: str) -> tuple[str, str, dict]:
    """``"vllm:http://h:8000#endpoint=pooling"`` -> ``("vllm", "http://h:8000", {"endpoint": "pooling"})``."""
    scheme, _, rest = str(spec).partition(":")
    if scheme not in REMOTE_SCHEMES or not rest:
        raise ValueError(f"remote model spec must look like 'tei:URL', 'vllm:URL' or 'http:URL', got {spec!r}")
    url, _, fragment = rest.partition("#")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{spec!r}: the URL after '{scheme}:' must start with http:// or https://")
    options: dict = {}
    for key, value in parse_qsl(fragment, keep_blank_values=True):
        if key in _FLOAT_OPTIONS:
            options[key] = float(value)
        elif key in _INT_OPTIONS:
            options[key] = int(value)
        elif key in _BOOL_OPTIONS:
            options[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            options[key] = value
    return scheme, url.rstrip("/"), options


def load_remote_model(spec: str, **kwargs) -> RemoteRM:
    """The adapter for a ``tei:``, ``vllm:`` or ``http:`` spec (keyword arguments override ``#`` options)."""
    scheme, url, options = parse_remote_spec(spec)
    cls = {"tei": TEIRewardModel, "vllm": VLLMRewardModel, "http": HTTPRewardModel}[scheme]
    return cls(url, **{**options, **kwargs})


def _load_tokenizer(tokenizer):
    if tokenizer is None or not isinstance(tokenizer, str):
        return tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer)


class RemoteRM(RewardModel):
    """Shared client machinery; subclasses give the info and scoring requests of one API."""

    kind = "remote"
    info_path = "/info"

    def __init__(
        self,
        url: str,
        *,
        revision: str | None = None,
        format_style: str = "template",
        template: TextTemplate | None = None,
        tokenizer=None,
        max_concurrency: int = 8,
        batch_size: int = 32,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        truncate: bool = True,
        headers: dict | None = None,
        api_key: str | None = None,
        name: str | None = None,
    ):
        if max_concurrency < 1 or batch_size < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("max_concurrency and batch_size must be >= 1, max_retries >= 0 and timeout > 0")
        self.url = url.rstrip("/")
        self.revision = revision
        self.max_concurrency = int(max_concurrency)
        self.batch_size = int(batch_size)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.truncate = bool(truncate)
        self.headers = dict(headers or {})
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.tokenizer = _load_tokenizer(tokenizer)
        self.formatter = Formatter(style=format_style, template=template or TextTemplate(), tokenizer=self.tokenizer)
        self.info = self.fetch_info()
        self.model_id, self.server_revision, self.max_length = self.parse_info(self.info)
        self.name = name or f"{self.kind}:{self.model_id}"
        self.fingerprint = sha256_bytes(
            "remote-rm",
            self.kind,
            self.endpoint_name(),
            f"model={self.model_id}",
            f"server_revision={self.server_revision}",
            f"revision={revision}",
            json.dumps(self.formatter.describe(), sort_keys=True),
            f"max_length={self.max_length}",
            f"truncate={self.truncate}",
        )

    # ------------------------------------------------------------------ API-specific parts
    def endpoint_name(self) -> str:
        raise NotImplementedError

    def parse_info(self, info: dict | None) -> tuple[str, str | None, int | None]:
        """``(model id, server revision, max input tokens)`` from the info answer."""
        raise NotImplementedError

    def build_request(self, batch: Sequence[str | tuple[str, str]]) -> tuple[str, dict]:
        """``(path, JSON body)`` of one scoring request."""
        raise NotImplementedError

    def parse_scores(self, body, n: int, url: str) -> np.ndarray:
        """``n`` float scores, in input order, from a decoded answer."""
        raise NotImplementedError

    # ------------------------------------------------------------------ what the engine calls
    def format(self, prompt, response, history=None):
        return self.formatter.format(prompt, response, history)

    @property
    def exact_lengths(self) -> bool:
        """True when :meth:`input_length` counts real tokens (a local ``tokenizer=`` was given)."""
        return self.tokenizer is not None

    def input_length(self, formatted) -> int:
        """Tokens of one formatted input (with ``tokenizer=``), else an estimate of 1 token per 4 characters."""
        if self.tokenizer is not None:
            args = formatted if isinstance(formatted, tuple) else (formatted,)
            add_special = self.formatter.style != "chat_template"
            return len(self.tokenizer(*args, add_special_tokens=add_special, truncation=False)["input_ids"])
        text = formatted if isinstance(formatted, str) else " ".join(formatted)
        return len(text) // 4 + 1

    def score_items(self, items):
        formatted = [self.format(p, r, h) for p, r, h in items]
        out = np.empty(len(formatted))
        starts = list(range(0, len(formatted), self.batch_size))
        chunks = [formatted[s : s + self.batch_size] for s in starts]
        for k, values in self.score_batches(chunks):
            out[starts[k] : starts[k] + len(values)] = values
        return out

    def score_batches(self, batches: Sequence[Sequence]) -> Iterator[tuple[int, np.ndarray]]:
        """Score batches of formatted inputs concurrently; yield ``(batch index, scores)`` as each finishes.

        A batch larger than ``batch_size`` goes out as several requests. The first
        failure (after retries) stops the remaining requests and is raised here,
        after every batch that finished before it has been yielded.
        """
        batches = [list(b) for b in batches]
        results: queue.Queue = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(
            target=lambda: asyncio.run(self._run(batches, results, stop)), name=f"{self.kind}-client", daemon=True
        )
        thread.start()
        try:
            for _ in range(len(batches)):
                kind, k, payload = results.get()
                if kind == "error":
                    raise payload
                yield k, payload
        finally:
            stop.set()
            thread.join(timeout=self.timeout + 5)

    # ------------------------------------------------------------------ HTTP
    async def _run(self, batches, results: queue.Queue, stop: threading.Event) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers, limits=limits) as client:
                gate = asyncio.Semaphore(self.max_concurrency)

                async def one(k: int, batch: list) -> None:
                    parts = []
                    for s in range(0, len(batch), self.batch_size):
                        async with gate:
                            if stop.is_set():
                                return
                            parts.append(await self._score_request(client, batch[s : s + self.batch_size]))
                    results.put(("ok", k, np.concatenate(parts) if parts else np.empty(0)))

                tasks = [asyncio.ensure_future(one(k, b)) for k, b in enumerate(batches)]
                try:
                    for fut in asyncio.as_completed(tasks):
                        await fut
                finally:
                    for t in tasks:
                        t.cancel()
        except Exception as exc:  # handed to the consumer thread, which raises it
            results.put(("error", None, exc))

    async def _score_request(self, client, batch) -> np.ndarray:
        path, payload = self.build_request(batch)
        url = self.url + path
        body = await self._post(client, url, payload)
        values = np.asarray(self.parse_scores(body, len(batch), url), dtype=np.float64)
        if values.shape != (len(batch),):
            raise RemoteScoringError(f"{url}: returned {values.size} scores for {len(batch)} inputs")
        return values

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_backoff, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_backoff, self.backoff * 2**attempt)

    async def _post(self, client, url: str, payload: dict):
        import httpx

        reason = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                resp = await client.post(url, json=payload)
            except httpx.TimeoutException:
                reason = f"no answer within the {self.timeout:g} s timeout"
            except httpx.TransportError as exc:
                reason = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                if resp.status_code < 400:
                    return _decode(resp, url, self.kind)
                if resp.status_code not in RETRY_STATUSES:
                    raise RemoteScoringError(
                        f"{url}: HTTP {resp.status_code} {resp.reason_phrase}: {resp.text[:300]!r}. "
                        f"The request was refused, so retrying will not help: check that the URL points at a "
                        f"{self.kind} server serving a reward model and that the input fits its limits."
                    )
                reason = f"HTTP {resp.status_code} {resp.reason_phrase}"
                retry_after = resp.headers.get("retry-after")
            if attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, retry_after))
        raise RemoteScoringError(
            f"{url}: {reason}; gave up after {self.max_retries + 1} attempts. Check that the server is up and "
            "not overloaded (or raise timeout= / max_retries=); every batch finished before this is in the "
            "score cache, so running again resumes from there."
        )

    def fetch_info(self) -> dict | None:
        """The decoded answer of ``GET URL + info_path`` (``None`` on 404), retried like scoring requests."""
        import httpx

        url = self.url + self.info_path
        reason = ""
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            for attempt in range(self.max_retries + 1):
                try:
                    resp = client.get(url)
                except httpx.TimeoutException:
                    reason = f"no answer within the {self.timeout:g} s timeout"
                except httpx.TransportError as exc:
                    reason = f"connection failed ({type(exc).__name__}: {exc})"
                else:
                    if resp.status_code == 404:
                        return None
                    if resp.status_code < 400:
                        return _decode(resp, url, self.kind)
                    if resp.status_code not in RETRY_STATUSES:
                        raise RemoteScoringError(
                            f"{url}: HTTP {resp.status_code} {resp.reason_phrase} asking for model info"
                        )
                    reason = f"HTTP {resp.status_code} {resp.reason_phrase}"
                if attempt < self.max_retries:
                    time.sleep(self._delay(attempt, None))
        raise RemoteScoringError(
            f"{url}: {reason} asking for model info; is the {self.kind} server running at {self.url}?"
        )

    def describe(self) -> dict:
        return {
            **super().describe(),
            "url": self.url,
            "model_id": self.model_id,
            "server_revision": self.server_revision,
            "revision": self.revision,
            "endpoint": self.endpoint_name(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, model={self.model_id!r}, fingerprint={self.fingerprint[:12]})"


def _decode(resp, url: str, kind: str):
    try:
        return resp.json()
    except ValueError:
        raise RemoteScoringError(
            f"{url}: HTTP {resp.status_code} answer is not valid JSON (starts with {resp.text[:80]!r}); "
            f"check that the URL points at a {kind} server and not at a proxy or web page"
        ) from None


def _field(obj, key, url: str, where: str):
    if not isinstance(obj, dict) or key not in obj:
        shown = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise RemoteScoringError(f"{url}: answer has no field {key!r} at {where} (found {shown})")
    return obj[key]


def _number(value, url: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RemoteScoringError(f"{url}: {where} is not a number: {value!r}")
    return float(value)


def _list(value, n: int | None, url: str, where: str) -> list:
    if not isinstance(value, list):
        raise RemoteScoringError(f"{url}: {where} must be a JSON list, got {type(value).__name__}")
    if n is not None and len(value) != n:
        raise RemoteScoringError(f"{url}: {where} has {len(value)} entries for {n} inputs")
    return value


class TEIRewardModel(RemoteRM):
    """Text Embeddings Inference ``/predict`` with ``raw_scores`` (a one-label sequence classifier)."""

    kind = "tei"
    info_path = "/info"

    def endpoint_name(self) -> str:
        return "predict"

    def parse_info(self, info):
        url = self.url + self.info_path
        if info is None:
            raise RemoteScoringError(f"{url}: not found (404); is this a text-embeddings-inference server?")
        model_id = _field(info, "model_id", url, "the top level")
        model_type = info.get("model_type") or {}
        if isinstance(model_type, dict) and "embedding" in model_type:
            raise RemoteScoringError(
                f"{url}: TEI serves {model_id!r} as an embedding model; a reward model needs a sequence "
                "classifier with one label (start TEI with the RM's *ForSequenceClassification checkpoint)"
            )
        labels = (model_type.get("classifier") or {}).get("id2label") if isinstance(model_type, dict) else None
        if isinstance(labels, dict) and len(labels) != 1:
            raise RemoteScoringError(
                f"{url}: TEI serves {model_id!r} with {len(labels)} labels {sorted(labels.values())}; "
                "a reward model has exactly one output"
            )
        return str(model_id), info.get("model_sha"), info.get("max_input_length")

    def build_request(self, batch):
        inputs = [list(f) if isinstance(f, tuple) else [f] for f in batch]
        body = {"inputs": inputs, "raw_scores": True, "truncate": self.truncate}
        if self.truncate:
            body["truncation_direction"] = "Left"  # keep the end of the conversation, like local scoring
        return "/predict", body

    def parse_scores(self, body, n, url):
        out = []
        for i, preds in enumerate(_list(body, n, url, "the answer")):
            preds = _list(preds, None, url, f"answer[{i}]")
            if len(preds) != 1:
                raise RemoteScoringError(f"{url}: answer[{i}] has {len(preds)} labels; a reward model has one")
            out.append(_number(_field(preds[0], "score", url, f"answer[{i}][0]"), url, f"answer[{i}][0].score"))
        return out


class VLLMRewardModel(RemoteRM):
    """vLLM's pooling API (``vllm serve MODEL --runner pooling``): ``/classify``, ``/pooling`` or ``/score``."""

    kind = "vllm"
    info_path = "/v1/models"
    ENDPOINTS = ("classify", "pooling", "score")

    def __init__(self, url, *, endpoint: str | None = None, model: str | None = None, **kwargs):
        style = kwargs.get("format_style", "template")
        endpoint = endpoint or ("score" if style == "pair" else "classify")
        if endpoint not in self.ENDPOINTS:
            raise ValueError(f"vllm endpoint must be one of {self.ENDPOINTS}, got {endpoint!r}")
        if (endpoint == "score") != (style == "pair"):
            raise ValueError(
                "vllm: format_style='pair' (a prompt/response sentence pair) goes with endpoint='score', "
                f"and endpoint='score' needs format_style='pair'; got endpoint={endpoint!r}, format_style={style!r}"
            )
        self.endpoint = endpoint
        self.served_model = model
        super().__init__(url, **kwargs)

    def endpoint_name(self) -> str:
        return self.endpoint

    def parse_info(self, info):
        url = self.url + self.info_path
        if info is None:
            raise RemoteScoringError(f"{url}: not found (404); is this a vLLM OpenAI-compatible server?")
        models = _list(_field(info, "data", url, "the top level"), None, url, "data")
        ids = [m.get("id") for m in models if isinstance(m, dict)]
        if self.served_model is not None:
            chosen = [m for m in models if isinstance(m, dict) and m.get("id") == self.served_model]
            if not chosen:
                raise RemoteScoringError(f"{url}: model {self.served_model!r} is not served; served models: {ids}")
        elif len(models) != 1:
            raise RemoteScoringError(f"{url}: serves {len(models)} models {ids}; pick one with model=")
        else:
            chosen = models
        entry = chosen[0]
        model_id = str(_field(entry, "id", url, "data[0]"))
        self.served_model = model_id
        return model_id, entry.get("root"), entry.get("max_model_len")

    def build_request(self, batch):
        body: dict = {"model": self.served_model, "use_activation": False}
        if self.truncate:
            body["truncate_prompt_tokens"] = -1  # truncate to max_model_len
            body["truncation_side"] = "left"  # keep the end of the conversation, like local scoring
        if self.endpoint == "score":
            body["text_1"] = [f[0] for f in batch]
            body["text_2"] = [f[1] for f in batch]
        else:
            body["input"] = list(batch)
            # A chat template already holds BOS and the like (as for local models).
            body["add_special_tokens"] = self.formatter.style != "chat_template"
        return f"/{self.endpoint}", body

    def parse_scores(self, body, n, url):
        data = _list(_field(body, "data", url, "the top level"), n, url, "data")
        out = np.full(n, np.nan)
        for pos, row in enumerate(data):
            where = f"data[{pos}]"
            index = row.get("index", pos) if isinstance(row, dict) else pos
            if not isinstance(index, int) or not 0 <= index < n:
                raise RemoteScoringError(f"{url}: {where}.index is {index!r}, expected 0..{n - 1}")
            if self.endpoint == "score":
                value = _number(_field(row, "score", url, where), url, f"{where}.score")
            elif self.endpoint == "classify":
                key = "probs" if isinstance(row, dict) and "probs" in row else "logits"
                probs = _list(_field(row, key, url, where), None, url, f"{where}.{key}")
                if len(probs) != 1:
                    raise RemoteScoringError(f"{url}: {where}.{key} has {len(probs)} classes; a reward model has one")
                value = _number(probs[0], url, f"{where}.{key}[0]")
            else:
                values = _list(_field(row, "data", url, where), None, url, f"{where}.data")
                if values and isinstance(values[-1], list):  # one row per token: the last token's reward
                    values = values[-1]
                    where += ".data[-1]"
                if len(values) != 1:
                    raise RemoteScoringError(f"{url}: {where} has {len(values)} values; a reward model has one")
                value = _number(values[0], url, f"{where}[0]")
            out[index] = value
        return out


class HTTPRewardModel(RemoteRM):
    """A generic JSON endpoint (see the module docstring for the request and response mapping)."""

    kind = "http"

    def __init__(
        self,
        url,
        *,
        score_path: str = "/score",
        info_path: str = "/info",
        input_key: str = "inputs",
        output_key: str = "scores",
        **kwargs,
    ):
        self.score_path = score_path
        self.info_path = info_path
        self.input_key = input_key
        self.output_key = output_key
        super().__init__(url, **kwargs)

    def endpoint_name(self) -> str:
        return f"{self.score_path}:{self.input_key}->{self.output_key}"

    def parse_info(self, info):
        url = self.url + self.info_path
        if info is None:
            if self.revision is None:
                raise RemoteScoringError(
                    f"{url}: not found (404), so the served model cannot be identified; pass revision='...' "
                    "(for example the model's commit) so that cached scores stay tied to that model"
                )
            return self.url, None, None
        model_id = _field(info, "model_id", url, "the top level")
        max_length = info.get("max_length")
        if max_length is not None and not isinstance(max_length, int):
            raise RemoteScoringError(f"{url}: max_length must be an integer, got {max_length!r}")
        return str(model_id), info.get("revision"), max_length

    def build_request(self, batch):
        return self.score_path, {self.input_key: [list(f) if isinstance(f, tuple) else f for f in batch]}

    def parse_scores(self, body, n, url):
        scores = body if isinstance(body, list) else _field(body, self.output_key, url, "the top level")
        scores = _list(scores, n, url, self.output_key)
        return [_number(v, url, f"{self.output_key}[{i}]") for i, v in enumerate(scores)]
