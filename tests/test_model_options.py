"""Model options (``--model-arg``): loading options reach ``from_pretrained``, PEFT adapters, fingerprints without weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from notebook_helpers import make_notebook

from workbench.cli import main
from workbench.models import load_reward_model, score_texts
from workbench.models.adapters import dtype_keyword
from workbench.models.loading import model_spec, parse_model_args, spec_fingerprint, split_model_spec
from workbench.reports.execution_cache import execution_key
from workbench.reports.pipeline import PreflightError, check_inputs, plan_audit

PROMPTS = ["What is the capital of France?", "Say something kind.", "How do I add numbers?"]
RESPONSES = [
    "The capital of France is Paris.",
    "You're absolutely right! Great question.",
    "def add(a, b): return a + b",
]


def independent_scores(model, rm, prompts=PROMPTS, responses=RESPONSES) -> np.ndarray:
    """Scores of a plain transformers classifier, one text at a time (no padding, no workbench batching)."""
    out = []
    model = model.eval()
    for p, r in zip(prompts, responses):
        formatted = rm.format(p, r)
        args = formatted if isinstance(formatted, tuple) else (formatted,)
        enc = rm.tokenizer(*args, return_tensors="pt")
        with torch.no_grad():
            out.append(float(model(**enc).logits[0, 0]))
    return np.array(out)


# --- parsing -----------------------------------------------------------------------------------------------------


def test_model_args_are_read_as_json_when_they_are():
    args = parse_model_args(
        ["dtype=bfloat16", "max_length=2048", "trust_remote_code=true", "device_map=auto", "x=null", "r=v1.0"]
    )
    assert args == {
        "dtype": "bfloat16",
        "max_length": 2048,
        "trust_remote_code": True,
        "device_map": "auto",
        "x": None,
        "r": "v1.0",
    }
    with pytest.raises(ValueError, match=r"name=value.*'dtype'"):
        parse_model_args(["dtype"])
    with pytest.raises(ValueError, match="given twice"):
        parse_model_args(["a=1", "a=2"])
    assert model_spec("m", {}) == "m"
    assert model_spec("m", {"dtype": "float64"}) == {"spec": "m", "dtype": "float64"}
    assert split_model_spec({"spec": "m", "dtype": "float64"}) == ("m", {"dtype": "float64"})


def test_unknown_option_names_the_option_and_the_accepted_ones(tiny_models):
    with pytest.raises(ValueError) as err:
        load_reward_model(str(tiny_models["bert"]), torch_dtyp="float16")
    message = str(err.value)
    assert "torch_dtyp" in message and str(tiny_models["bert"]) in message
    for accepted in ("dtype", "attn_implementation", "device_map", "revision", "load_in_8bit", "token_budget"):
        assert accepted in message
    with pytest.raises(ValueError, match=r"unknown model option\(s\) dtype.*accepted: .*name"):
        load_reward_model("scores:" + str(tiny_models["bert"] / "config.json"), dtype="float16")


def test_bad_dtype_and_missing_bitsandbytes_say_what_to_do(tiny_models):
    with pytest.raises(ValueError, match=r"dtype='float17'.*bfloat16"):
        load_reward_model(str(tiny_models["bert"]), dtype="float17")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        for option in ("load_in_8bit", "load_in_4bit"):
            with pytest.raises(ImportError, match=rf"{option}=true needs the bitsandbytes.*pip install bitsandbytes"):
                load_reward_model(str(tiny_models["bert"]), **{option: True})
    with pytest.raises(ValueError, match="choose one"):
        load_reward_model(str(tiny_models["bert"]), load_in_8bit=True, load_in_4bit=True)


def test_transformers_dtype_keyword_matches_the_installed_version():
    import transformers
    from transformers import AutoModelForSequenceClassification

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    assert dtype_keyword() == ("dtype" if (major, minor) >= (4, 56) else "torch_dtype")
    import inspect

    source = inspect.getsource(AutoModelForSequenceClassification.from_pretrained.__func__)
    assert dtype_keyword() in source or "kwargs" in source


# --- options reach from_pretrained --------------------------------------------------------------------------------


def test_dtype_attn_and_device_map_reach_from_pretrained(tiny_models):
    path = str(tiny_models["llama"])
    base = load_reward_model(path)
    wide = load_reward_model(path, dtype="float64", attn_implementation="eager")
    assert wide.weight_loads == 0
    s_base = score_texts(base, PROMPTS, RESPONSES, cache=None, progress=False).scores
    s_wide = score_texts(wide, PROMPTS, RESPONSES, cache=None, progress=False).scores
    assert wide.weight_loads == 1
    assert next(wide.model.parameters()).dtype == torch.float64
    assert wide.model.config._attn_implementation == "eager"
    np.testing.assert_allclose(s_wide, s_base, rtol=1e-4, atol=1e-4)
    assert wide.fingerprint != base.fingerprint  # dtype is part of the fingerprint

    mapped = load_reward_model(path, device_map="cpu")
    s_mapped = score_texts(mapped, PROMPTS, RESPONSES, cache=None, progress=False).scores
    np.testing.assert_allclose(s_mapped, s_base, rtol=1e-5, atol=1e-5)
    assert mapped.fingerprint == base.fingerprint  # placement does not change scores
    # the map reaches from_pretrained, and the adapter leaves the weights where it put them
    meta = load_reward_model(path, device_map={"": "meta"})
    meta.load_weights()
    assert next(meta.model.parameters()).device.type == "meta" and meta.device.type == "meta"


def test_revision_max_length_and_token_budget(tiny_models):
    path = str(tiny_models["bert"])
    base = load_reward_model(path)
    assert load_reward_model(path, revision="main").fingerprint != base.fingerprint
    rm = load_reward_model(path, max_length=12, token_budget=24)
    assert rm.max_length == 12 and rm.token_budget == 24
    long = [f"word{i} " * 40 for i in range(4)]
    result = score_texts(rm, PROMPTS[:1] * 4, long, cache=None, progress=False)
    assert result.truncated.all() and (result.n_tokens == 12).all()
    assert result.n_batches == 2  # 24 padded tokens per batch: two texts of 12
    assert score_texts(base, PROMPTS[:1] * 4, long, cache=None, progress=False).n_batches == 1
    with pytest.raises(ValueError, match="token_budget must be a positive integer"):
        load_reward_model(path, token_budget=0)


# --- fingerprints without weights ---------------------------------------------------------------------------------


def test_spec_fingerprint_equals_the_loaded_fingerprint_without_reading_weights(tiny_models, tmp_path):
    path = str(tiny_models["gpt2"])
    fp = spec_fingerprint(path, max_length=32)
    rm = load_reward_model(path, max_length=32)
    assert fp == rm.fingerprint and rm.weight_loads == 0 and not rm.weights_loaded
    score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False)
    assert rm.weight_loads == 1 and rm.fingerprint == fp

    # A folder whose weights file is present but unreadable still fingerprints (the weights are not loaded) ...
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    weights = next(broken.glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file" * 100)
    fp_broken = spec_fingerprint(str(broken), max_length=32)
    assert fp_broken != fp  # ... and the fingerprint follows the bytes of the weight file
    lazy = load_reward_model(str(broken), max_length=32)
    assert lazy.fingerprint == fp_broken and lazy.weight_loads == 0
    with pytest.raises(Exception, match="(?i)safetensors|header|deserializ"):
        lazy.load_weights()


def test_value_head_options_and_fingerprint(tiny_models, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from workbench.models import ValueHeadConfig, ValueHeadRM, linear_head

    torch.manual_seed(1)
    folder = tmp_path / "vh"
    backbone = AutoModel.from_pretrained(tiny_models["bert"])
    head = linear_head(backbone.config.hidden_size)
    ValueHeadRM(
        backbone, AutoTokenizer.from_pretrained(tiny_models["bert"]), head, ValueHeadConfig(hidden_size=32)
    ).save_pretrained(folder)
    rm = load_reward_model(str(folder), max_length=20, token_budget=100)
    assert rm.max_length == 20 and rm.token_budget == 100 and rm.weight_loads == 0
    assert spec_fingerprint(str(folder), max_length=20) == rm.fingerprint
    assert spec_fingerprint(str(folder)) != rm.fingerprint
    with pytest.raises(ValueError, match=r"value-head model .*unknown model option\(s\) format_style.*accepted"):
        load_reward_model(str(folder), format_style="chat_template")


# --- PEFT adapters ------------------------------------------------------------------------------------------------


def _lora_adapter(base: Path, out: Path) -> tuple[Path, torch.nn.Module]:
    """A real LoRA adapter on the tiny BERT classifier, with nonzero B matrices; also returns the merged model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(3)
    model = AutoModelForSequenceClassification.from_pretrained(base)
    peft_model = get_peft_model(
        model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
    )
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(out)
    merged = peft_model.merge_and_unload()
    return out, merged


def test_peft_adapter_folder_loads_through_peft(tiny_models, tmp_path):
    base = tiny_models["bert"]
    adapter, merged = _lora_adapter(base, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == base and not (adapter / "config.json").exists()

    rm = load_reward_model(str(adapter))
    assert rm.weight_loads == 0
    expected = independent_scores(merged, rm)
    got = score_texts(rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    base_rm = load_reward_model(str(base))
    base_scores = score_texts(base_rm, PROMPTS, RESPONSES, cache=None, progress=False).scores
    assert np.abs(got - base_scores).max() > 1e-3  # the adapter changed the scores
    assert rm.fingerprint != base_rm.fingerprint
    assert spec_fingerprint(str(adapter)) == rm.fingerprint

    # without base_model_name_or_path: an error saying which option to give; with base_model= it loads
    bare = tmp_path / "bare"
    shutil.copytree(adapter, bare)
    config["base_model_name_or_path"] = None
    (bare / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"adapter_config.json: no base_model_name_or_path.*base_model="):
        load_reward_model(str(bare))
    explicit = load_reward_model(str(bare), base_model=str(base))
    np.testing.assert_allclose(
        score_texts(explicit, PROMPTS, RESPONSES, cache=None, progress=False).scores, expected, rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="base_model=.*PEFT adapter folders"):
        load_reward_model(str(base), base_model=str(base))


# --- the pipeline carries the options -----------------------------------------------------------------------------


def test_plan_hands_model_args_to_every_notebook_and_keys_executions(tiny_models, tmp_path, monkeypatch):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    nb = make_notebook(nbdir / "10_a.ipynb", 'model = ""  # RM spec\ndata = "golden"  # pairs', "print(model)")
    make_notebook(nbdir / "20_b.ipynb", 'model = ""  # RM spec', "print(model)")
    monkeypatch.chdir(tiny_models["bert"].parent)
    plan = plan_audit("bert", notebook_dir=nbdir, model_args={"dtype": "float64", "max_length": 16})
    spec = {"spec": str(tiny_models["bert"]), "dtype": "float64", "max_length": 16}
    assert all(p["model"] == spec for p in plan.parameters.values())
    assert plan.model_spec == str(tiny_models["bert"]) and plan.model_args == {"dtype": "float64", "max_length": 16}
    check_inputs(plan)
    key = execution_key(nb, plan.parameters[nb], model_fingerprint="fp")
    other = execution_key(nb, {**plan.parameters[nb], "model": {**spec, "dtype": "bfloat16"}}, model_fingerprint="fp")
    assert key != other  # the options are part of the execution key (besides the fingerprint)

    missing = plan_audit("./no-such-model", notebook_dir=nbdir, model_args={"dtype": "float64"})
    with pytest.raises(PreflightError, match=r"--model './no-such-model': no such file or folder"):
        check_inputs(missing)


def test_cli_model_args(tiny_models, tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"id": f"r{i}", "prompt": "Tell me a story.", "chosen": "word " * (5 + 10 * i), "rejected": "no"}
        for i in range(3)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = str(tiny_models["bert"])
    assert main(["doctor", "--data", str(data), "--model", model, "--model-arg", "max_length=12", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "12" in json.dumps(report) and "truncat" in json.dumps(report)

    assert main(["doctor", "--data", str(data), "--model", model, "--model-arg", "flavour=1"]) == 2
    assert "unknown model option(s) flavour" in capsys.readouterr().err
    assert main(["doctor", "--data", str(data), "--model-arg", "max_length=12"]) == 2
    assert "--model-arg needs --model" in capsys.readouterr().err
    code = main(["audit", "--model", model, "--out", str(tmp_path / "o"), "--model-arg", "nonsense"])
    assert code == 2 and "--model-arg must look like name=value" in capsys.readouterr().err
