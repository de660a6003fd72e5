"""Remote RMs (TEI, vLLM, generic HTTP) against real HTTP servers on 127.0.0.1.

Each server implements its API's request and response shapes (TEI ``/info`` and
``/predict``; vLLM ``/v1/models``, ``/classify``, ``/pooling``, ``/score``; the
documented generic mapping) over a tiny real transformers model, scoring every
input on its own with plain transformers calls (no workbench code), so the
comparison with local scoring is independent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from workbench.models import ScoreCache, load_reward_model, score_pairs, score_texts
from workbench.models.remote import (
    HTTPRewardModel,
    RemoteScoringError,
    TEIRewardModel,
    VLLMRewardModel,
    parse_remote_spec,
)

PROMPTS = [
    "What is the capital of France?",
    "Explain recursion.",
    "Write a haiku.",
    "Is water wet?",
    "def add(a, b)?",
    "Tell me a joke about the lazy dog.",
] * 3
RESPONSES = [
    "The capital of France is Paris.",
    "A function that calls itself " + "again " * 9,
    "Quick brown fox",
    "You're absolutely right! Great question.",
    "return a + b",
    "I am not sure, you could probably search online for that." * 2,
    "Paris.",
    "Water boils at 100 degrees Celsius at sea level.",
    "no",
    "yes " * 15,
    "The quick brown fox jumps over the lazy dog.",
    "I'd be happy to help.",
    "Lyon",
    "recursion: see recursion",
    "old pond / frog jumps in / water sound",
    "Maybe.",
    "def add(a, b):\n    return a + b",
    "ha",
]


class Backend:
    """A tiny sequence-classification model scored with plain transformers, one input at a time."""

    def __init__(self, path):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()

    def _encode(self, inputs, add_special=True):
        args = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        return self.tok(*args, add_special_tokens=add_special, return_tensors="pt")

    def score(self, inputs, add_special=True) -> float:
        with self.torch.no_grad():
            return float(self.model(**self._encode(inputs, add_special)).logits[0, 0])

    def token_rewards(self, text, add_special=True) -> list[list[float]]:
        """The score head at every position (what a reward model's ALL pooling returns)."""
        with self.torch.no_grad():
            enc = self._encode(text, add_special)
            hidden = self.model.base_model(**enc).last_hidden_state
            return self.model.score(hidden)[0].tolist()


class Server:
    """A threaded HTTP server on 127.0.0.1 with failure injection."""

    def __init__(self, routes, **behaviour):
        self.routes = routes  # {(method, path): fn(body) -> (status, payload)}
        self.behaviour = {"fail_first": 0, "delay_first": 0, "delay": 0.0, "delay_all": False}
        self.behaviour.update(behaviour)
        self.lock = threading.Lock()
        self.posts = 0  # scoring requests answered (or refused)
        self.texts = 0  # inputs scored
        self.inflight = self.max_inflight = 0
        self.batches: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, payload, raw=None, headers=()):
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fn = server.routes.get(("GET", self.path))
                if fn is None:
                    return self._send(404, {"error": "not found"})
                status, payload = fn(None)
                self._send(status, payload)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fn = server.routes.get(("POST", self.path))
                if fn is None:
                    return self._send(404, {"error": f"no route {self.path}"})
                b = server.behaviour
                with server.lock:
                    server.posts += 1
                    n = server.posts
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    if b.get("die_after") is not None and n > b["die_after"]:
                        # The process dies: stop listening, drop this connection without an answer.
                        threading.Thread(target=server.close, daemon=True).start()
                        self.close_connection = True
                        return
                    if n <= b["fail_first"]:
                        return self._send(
                            503,
                            {"error": "Model is overloaded", "error_type": "overloaded"},
                            headers=[("Retry-After", "0")],
                        )
                    if b["delay_all"] or n <= b["delay_first"]:
                        time.sleep(b["delay"])
                    if b.get("malformed"):
                        return self._send(200, None, raw=b'{"scores": [1.0, ')
                    status, payload = fn(body)
                    if status == 200:
                        with server.lock:
                            server.texts += payload.pop("_n") if isinstance(payload, dict) and "_n" in payload else 0
                    self._send(
                        status, payload if not isinstance(payload, dict) or "_list" not in payload else payload["_list"]
                    )
                finally:
                    with server.lock:
                        server.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            self.httpd.shutdown()
            self.httpd.server_close()


def tei_routes(backend: Backend, model_id="tiny/gpt2-rm", sha="0123abc", labels=1, max_batch=32):
    info = {
        "model_id": model_id,
        "model_sha": sha,
        "model_dtype": "float32",
        "model_type": {"classifier": {"id2label": {str(i): f"LABEL_{i}" for i in range(labels)}}},
        "max_concurrent_requests": 512,
        "max_input_length": 128,
        "max_batch_tokens": 16384,
        "max_client_batch_size": max_batch,
        "version": "1.8.0",
    }

    def predict(body):
        inputs = body["inputs"]
        if len(inputs) > max_batch:
            return 413, {
                "error": f"batch size {len(inputs)} > maximum allowed batch size {max_batch}",
                "error_type": "Validation",
            }
        out = []
        for item in inputs:
            s = backend.score(item)  # TEI adds the tokenizer's special tokens
            s = s if body.get("raw_scores") else 1 / (1 + np.exp(-s))
            out.append([{"score": s, "label": "LABEL_0"}])
        return 200, {"_list": out, "_n": len(inputs)}

    return {("GET", "/info"): lambda _: (200, info), ("POST", "/predict"): predict}


def vllm_routes(backend: Backend, model_id="tiny-rm", root="/models/tiny-rm"):
    models = {
        "object": "list",
        "data": [{"id": model_id, "object": "model", "owned_by": "vllm", "root": root, "max_model_len": 128}],
    }

    def check(body):
        if body.get("model") not in (None, model_id):
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
        return None

    def classify(body):
        err = check(body)
        if err:
            return err
        add = body.get("add_special_tokens", True)
        act = body.get("use_activation")
        data = []
        for i, text in enumerate(body["input"]):
            s = backend.score(text, add)
            s = s if act is False else 1 / (1 + np.exp(-s))
            data.append({"index": i, "label": "LABEL_0", "probs": [s], "num_classes": 1})
        return 200, {
            "id": "classify-1",
            "object": "list",
            "created": 0,
            "model": model_id,
            "data": data,
            "_n": len(data),
        }

    def pooling(body):
        err = check(body)
        if err:
            return err
        add = body.get("add_special_tokens", True)
        data = [
            {"index": i, "object": "pooling", "data": backend.token_rewards(t, add)}
            for i, t in enumerate(body["input"])
        ]
        # vLLM may answer in any order; index says which input
        return 200, {
            "id": "pool-1",
            "object": "list",
            "created": 0,
            "model": model_id,
            "data": data[::-1],
            "_n": len(data),
        }

    def score(body):
        err = check(body)
        if err:
            return err
        t1, t2 = body["text_1"], body["text_2"]
        data = [{"index": i, "object": "score", "score": backend.score([a, b])} for i, (a, b) in enumerate(zip(t1, t2))]
        return 200, {"id": "score-1", "object": "list", "created": 0, "model": model_id, "data": data, "_n": len(data)}

    return {
        ("GET", "/v1/models"): lambda _: (200, models),
        ("POST", "/classify"): classify,
        ("POST", "/pooling"): pooling,
        ("POST", "/score"): score,
    }


def http_routes(backend: Backend, info=True):
    routes = {
        ("POST", "/score"): lambda body: (
            200,
            {"scores": [backend.score(x) for x in body["inputs"]], "_n": len(body["inputs"])},
        ),
    }
    if info:
        routes[("GET", "/info")] = lambda _: (200, {"model_id": "tiny-deberta", "revision": "r1", "max_length": 128})
    return routes


@pytest.fixture(scope="module")
def backends(tiny_models):
    return {name: Backend(tiny_models[name]) for name in ("gpt2", "deberta", "llama")}


@pytest.fixture(scope="module")
def local(tiny_models):
    """Local scores of the same models (the reference)."""
    out = {}
    for name, kwargs in [("gpt2", {}), ("deberta", {"format_style": "pair"}), ("llama", {})]:
        rm = load_reward_model(str(tiny_models[name]), **kwargs)
        out[name] = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    return out


@pytest.fixture
def serve():
    servers = []

    def start(routes, **behaviour):
        s = Server(routes, **behaviour)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


FAST = dict(backoff=0.01, max_backoff=0.05)


def test_tei_scores_match_local_scoring(serve, backends, local, tiny_models, tmp_path):
    server = serve(tei_routes(backends["gpt2"]))
    rm = load_reward_model(f"tei:{server.url}", **FAST)
    assert isinstance(rm, TEIRewardModel) and rm.model_id == "tiny/gpt2-rm" and rm.max_length == 128
    cache = ScoreCache(tmp_path / "c.sqlite")
    result = score_texts(rm, PROMPTS, RESPONSES, cache=cache, progress=False, max_batch_size=5)
    np.testing.assert_allclose(result.scores, local["gpt2"], atol=1e-5, rtol=0)
    distinct = len(set(zip(PROMPTS, RESPONSES)))
    assert server.texts == distinct and result.n_computed == len(PROMPTS)
    # Rerun: every score comes from the cache, the server sees nothing.
    again = score_texts(rm, PROMPTS, RESPONSES, cache=cache, progress=False)
    assert again.n_cached == len(PROMPTS) and server.texts == distinct
    np.testing.assert_array_equal(again.scores, result.scores)
    # Sentence pairs travel as [context, response].
    pair_server = serve(tei_routes(backends["deberta"], model_id="tiny/deberta-rm"))
    pair = load_reward_model(f"tei:{pair_server.url}", format_style="pair", **FAST)
    np.testing.assert_allclose(
        score_texts(pair, PROMPTS, RESPONSES, cache=None, progress=False).scores, local["deberta"], atol=1e-5, rtol=0
    )


def test_vllm_endpoints_match_local_scoring(serve, backends, local, tiny_models):
    gpt2 = serve(vllm_routes(backends["gpt2"]))
    classify = load_reward_model(f"vllm:{gpt2.url}", **FAST)
    assert isinstance(classify, VLLMRewardModel) and classify.endpoint == "classify"
    np.testing.assert_allclose(
        score_texts(classify, PROMPTS, RESPONSES, cache=None, progress=False).scores, local["gpt2"], atol=1e-5, rtol=0
    )
    pooling = load_reward_model(f"vllm:{gpt2.url}#endpoint=pooling", **FAST)
    np.testing.assert_allclose(
        score_texts(pooling, PROMPTS, RESPONSES, cache=None, progress=False).scores, local["gpt2"], atol=1e-5, rtol=0
    )
    assert pooling.fingerprint != classify.fingerprint
    pair_server = serve(vllm_routes(backends["deberta"], model_id="tiny-deberta"))
    score = load_reward_model(f"vllm:{pair_server.url}", format_style="pair", **FAST)
    assert score.endpoint == "score"
    np.testing.assert_allclose(
        score_texts(score, PROMPTS, RESPONSES, cache=None, progress=False).scores, local["deberta"], atol=1e-5, rtol=0
    )
    # A chat-template RM: the client renders the template (with a local tokenizer, which
    # also gives exact token counts) and asks vLLM not to add special tokens again.
    llama = serve(vllm_routes(backends["llama"], model_id="tiny-llama"))
    chat = load_reward_model(
        f"vllm:{llama.url}", format_style="chat_template", tokenizer=str(tiny_models["llama"]), **FAST
    )
    result = score_texts(chat, PROMPTS, RESPONSES, cache=None, progress=False)
    np.testing.assert_allclose(result.scores, local["llama"], atol=1e-5, rtol=0)
    reference = score_texts(str(tiny_models["llama"]), PROMPTS, RESPONSES, cache=None, progress=False)
    np.testing.assert_array_equal(result.n_tokens, reference.n_tokens)


def test_generic_http_mapping_and_score_pairs(serve, backends, local):
    import pandas as pd

    server = serve(http_routes(backends["deberta"]))
    rm = load_reward_model(f"http:{server.url}", format_style="pair", **FAST)
    assert isinstance(rm, HTTPRewardModel) and rm.model_id == "tiny-deberta" and rm.server_revision == "r1"
    frame = pd.DataFrame(
        {"id": ["a", "b", "c"], "prompt": PROMPTS[:3], "chosen": RESPONSES[:3], "rejected": RESPONSES[3:6]}
    )
    pairs = score_pairs(rm, frame, cache=None, progress=False).frame
    np.testing.assert_allclose(pairs["chosen_score"], local["deberta"][:3], atol=1e-5, rtol=0)
    # Without an info endpoint the served model cannot be identified: revision= is required.
    bare = serve(http_routes(backends["deberta"], info=False))
    with pytest.raises(RemoteScoringError, match=r"/info: not found.*revision="):
        load_reward_model(f"http:{bare.url}", **FAST)
    assert load_reward_model(f"http:{bare.url}#revision=v7", **FAST).model_id == bare.url


def test_fingerprint_comes_from_server_model_info(serve, backends):
    a = serve(tei_routes(backends["gpt2"], sha="aaa"))
    b = serve(tei_routes(backends["gpt2"], sha="aaa"))
    c = serve(tei_routes(backends["gpt2"], sha="bbb"))
    fa, fb, fc = (load_reward_model(f"tei:{s.url}").fingerprint for s in (a, b, c))
    assert fa == fb  # the same model on another host shares cached scores
    assert fa != fc  # another revision does not
    assert load_reward_model(f"tei:{a.url}", revision="mine").fingerprint != fa
    assert load_reward_model(f"tei:{a.url}", format_style="pair").fingerprint != fa


def test_retries_on_503_then_succeeds(serve, backends, local):
    server = serve(tei_routes(backends["gpt2"]), fail_first=3)
    rm = load_reward_model(f"tei:{server.url}", max_concurrency=1, **FAST)
    result = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False)
    np.testing.assert_allclose(result.scores, local["gpt2"], atol=1e-5, rtol=0)
    assert server.posts == result.n_batches + 3


def test_slow_responses_time_out_and_are_retried(serve, backends, local):
    server = serve(tei_routes(backends["gpt2"]), delay_first=1, delay=1.0)
    rm = load_reward_model(f"tei:{server.url}", timeout=0.3, max_concurrency=1, **FAST)
    result = score_texts(rm, PROMPTS[:4], RESPONSES[:4], cache=None, progress=False)
    np.testing.assert_allclose(result.scores, local["gpt2"][:4], atol=1e-5, rtol=0)
    always_slow = serve(tei_routes(backends["gpt2"]), delay_all=True, delay=1.0)
    rm = load_reward_model(f"tei:{always_slow.url}", timeout=0.2, max_retries=1, **FAST)
    with pytest.raises(
        RemoteScoringError, match=rf"{always_slow.url}/predict: no answer within the 0.2 s timeout; gave up after 2"
    ):
        score_texts(rm, PROMPTS[:2], RESPONSES[:2], cache=None, progress=False)


def test_malformed_json_and_refused_requests_fail_clearly(serve, backends):
    server = serve(tei_routes(backends["gpt2"]), malformed=True)
    rm = load_reward_model(f"tei:{server.url}", **FAST)
    with pytest.raises(RemoteScoringError, match=rf"{server.url}/predict: HTTP 200 answer is not valid JSON"):
        score_texts(rm, PROMPTS[:2], RESPONSES[:2], cache=None, progress=False)
    assert server.posts == 1  # not retried
    # A client batch larger than TEI's max_client_batch_size: 413, not retried, status named.
    small = serve(tei_routes(backends["gpt2"], max_batch=2))
    rm = load_reward_model(f"tei:{small.url}", batch_size=4, **FAST)
    with pytest.raises(RemoteScoringError, match=rf"{small.url}/predict: HTTP 413 .*maximum allowed batch size 2"):
        score_texts(rm, PROMPTS[:4], RESPONSES[:4], cache=None, progress=False)
    # Wrong answer shapes name the field.
    broken = serve(
        {
            **tei_routes(backends["gpt2"]),
            ("POST", "/predict"): lambda body: (200, {"_list": [[{"label": "x"}]] * len(body["inputs"])}),
        }
    )
    rm = load_reward_model(f"tei:{broken.url}", **FAST)
    with pytest.raises(RemoteScoringError, match=r"no field 'score' at answer\[0\]\[0\]"):
        score_texts(rm, PROMPTS[:2], RESPONSES[:2], cache=None, progress=False)


def test_server_info_errors_are_clear(serve, backends):
    emb = serve(
        {("GET", "/info"): lambda _: (200, {"model_id": "bge", "model_type": {"embedding": {"pooling": "cls"}}})}
    )
    with pytest.raises(RemoteScoringError, match=r"/info: TEI serves 'bge' as an embedding model"):
        load_reward_model(f"tei:{emb.url}")
    two = serve(tei_routes(backends["gpt2"], labels=2))
    with pytest.raises(RemoteScoringError, match="2 labels"):
        load_reward_model(f"tei:{two.url}")
    server = serve(vllm_routes(backends["gpt2"]))
    with pytest.raises(RemoteScoringError, match=r"model 'other' is not served; served models: \['tiny-rm'\]"):
        load_reward_model(f"vllm:{server.url}", model="other")
    with pytest.raises(RemoteScoringError, match=r"127.0.0.1:9/info: connection failed.*is the tei server running"):
        load_reward_model("tei:http://127.0.0.1:9", max_retries=0)
    with pytest.raises(ValueError, match="must start with http"):
        load_reward_model("tei:localhost:8080")
    with pytest.raises(ValueError, match="endpoint='score'"):
        load_reward_model(f"vllm:{server.url}", endpoint="score")
    assert parse_remote_spec("vllm:http://h:8000/#endpoint=pooling&timeout=5&truncate=false") == (
        "vllm",
        "http://h:8000",
        {"endpoint": "pooling", "timeout": 5.0, "truncate": False},
    )


def test_concurrency_is_bounded(serve, backends, local):
    server = serve(tei_routes(backends["gpt2"]), delay_all=True, delay=0.15)
    rm = load_reward_model(f"tei:{server.url}", max_concurrency=3, **FAST)
    result = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False, max_batch_size=2)
    np.testing.assert_allclose(result.scores, local["gpt2"], atol=1e-5, rtol=0)
    assert result.n_batches >= 6 and server.max_inflight == 3


def test_server_dying_mid_run_loses_nothing_and_a_rerun_resumes(serve, backends, local, tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    first = serve(tei_routes(backends["gpt2"]), die_after=2)
    rm = load_reward_model(f"tei:{first.url}", max_concurrency=1, max_retries=2, timeout=2, **FAST)
    with pytest.raises(RemoteScoringError, match=rf"{first.url}/predict: connection failed.*score cache"):
        score_texts(rm, PROMPTS, RESPONSES, cache=cache, progress=False, max_batch_size=4)
    assert first.texts == 8 and len(cache) == 8  # the two answered batches are cached
    # The model comes back on another host: same fingerprint, so the rerun resumes.
    second = serve(tei_routes(backends["gpt2"]))
    rm2 = load_reward_model(f"tei:{second.url}", **FAST)
    assert rm2.fingerprint == rm.fingerprint
    result = score_texts(rm2, PROMPTS, RESPONSES, cache=cache, progress=False, max_batch_size=4)
    distinct = len(set(zip(PROMPTS, RESPONSES)))
    assert second.texts == distinct - 8
    np.testing.assert_allclose(result.scores, local["gpt2"], atol=1e-5, rtol=0)
