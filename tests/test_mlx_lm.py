"""mlx-lm language models on our kernels: patch, quantize, load, generate,
gradients and LoRA fine-tuning, against stock mlx-lm.

Every model is built here from a small config with random weights (several
families: Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma), quantized the way
mlx-lm does it, and run twice: with stock's layers, then patched onto ours.
Nothing is downloaded: the model directories and their tokenizer are written
by the tests (HF_HUB_OFFLINE is set so that an attempt would fail loudly).

Under MLX_QMM_BACKEND=metal-sim our kernels run on the Metal simulator, about
a hundred times slower than on the CPU, so the models shrink (hidden size 128,
a 256-token vocabulary, short sequences) and fewer configurations run.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import mlx_qmm
import mlx_qmm.nn as qnn
import numpy as np
import pytest
from conftest import METAL_SIM, TOLERANCE, assert_close, evaluate_poisoned
from mlx.utils import tree_flatten, tree_map

# Fail, never download, if anything below reaches for the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

try:
    import mlx_lm
    from mlx_lm.convert import convert
    from mlx_lm.tuner.trainer import default_loss
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import quantize_model, save_config, save_model
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
except ImportError:
    # mlx-lm is in the "test" extra, so CI always has it: there its absence
    # must fail, not skip.
    if os.environ.get("CI"):
        raise
    pytest.skip(
        'mlx-lm is not installed (pip install ".[test]")', allow_module_level=True
    )

# ---------------------------------------------------------------------------
# Models

HIDDEN = 128 if METAL_SIM else 256
VOCAB = 256 if METAL_SIM else 1024
LAYERS = 2
SEQUENCE = 8 if METAL_SIM else 16
GENERATED_TOKENS = 32

FAMILIES = {
    # Untied output projection, grouped-query attention.
    "llama": {"model_type": "llama", "num_key_value_heads": 2},
    # Mistral checkpoints load through mlx-lm's llama module (MODEL_REMAPPING).
    "mistral": {
        "model_type": "mistral",
        "num_key_value_heads": 1,
        "rope_theta": 1e6,
        "tie_word_embeddings": False,
    },
    # Biases on q/k/v (fused into our kernel), tied embeddings: the output
    # projection is the embedding's as_linear.
    "qwen2": {"model_type": "qwen2", "num_key_value_heads": 2},
    # q/k norms, explicit head_dim, untied.
    "qwen3": {
        "model_type": "qwen3",
        "num_key_value_heads": 2,
        "head_dim": 64,
        "max_position_embeddings": 512,
        "rope_theta": 1e6,
        "tie_word_embeddings": False,
    },
    # Fused qkv_proj and gate_up_proj.
    "phi3": {"model_type": "phi3", "num_key_value_heads": 4},
    # GeGLU, scaled embeddings, 1 + w norms, always tied.
    "gemma": {"model_type": "gemma", "num_key_value_heads": 1, "head_dim": 64},
}


def family_config(family: str) -> dict:
    return {
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "rms_norm_eps": 1e-5,
        "vocab_size": VOCAB,
        **FAMILIES[family],
    }


def build(config: dict, dtype=mx.float32) -> nn.Module:
    """An mlx-lm model of ``config`` with random weights, in ``dtype``.

    The norms' weights are drawn too (mlx-lm initialises them to a constant),
    so that each layer's parameters matter to the output.
    """
    model_type = mlx_lm.utils.MODEL_REMAPPING.get(
        config["model_type"], config["model_type"]
    )
    arch = importlib.import_module(f"mlx_lm.models.{model_type}")
    model = arch.Model(arch.ModelArgs.from_dict(config))
    model.update(
        tree_map(
            lambda p: p + 0.1 * mx.random.normal(p.shape) if p.ndim == 1 else p,
            model.parameters(),
        )
    )
    model.set_dtype(dtype)
    mx.eval(model.parameters())
    return model


def quantize_like_mlx_lm(model: nn.Module, config: dict, group_size: int, bits: int):
    """Quantize as ``mlx_lm.convert`` does (every layer with ``to_quantized``
    whose input size the group size divides); return the config it writes."""
    _, quantized_config = quantize_model(model, config, group_size, bits)
    return quantized_config


def tokens(batch: int = 2, length: int = SEQUENCE) -> mx.array:
    return mx.random.randint(0, VOCAB, (batch, length))


STOCK_CLASSES = {
    qnn.Linear: nn.Linear,
    qnn.QuantizedLinear: nn.QuantizedLinear,
    qnn.Embedding: nn.Embedding,
    qnn.QuantizedEmbedding: nn.QuantizedEmbedding,
}


def count_types(model: nn.Module) -> Counter:
    return Counter(type(m) for _, m in model.named_modules())


def assert_patched(model: nn.Module, before: dict):
    """Every stock linear or embedding became ours; modules and arrays kept."""
    after = dict(model.named_modules())
    assert after.keys() == before["modules"].keys()
    for path, module in after.items():
        assert module is before["modules"][path], path
        assert type(module) not in STOCK_CLASSES.values(), (path, type(module))
    params = tree_flatten(model.parameters())
    assert [k for k, _ in params] == [k for k, _ in before["params"]]
    for (key, a), (_, b) in zip(params, before["params"], strict=True):
        assert a is b, key


def snapshot(model: nn.Module) -> dict:
    return {
        "modules": dict(model.named_modules()),
        "params": tree_flatten(model.parameters()),
    }


def quantized_matmuls(model: nn.Module) -> int:
    """How many quantized matmuls a forward pass runs: every quantized linear
    layer, plus the tied output projection (the embedding's as_linear)."""
    layers = sum(isinstance(m, nn.QuantizedLinear) for _, m in model.named_modules())
    tied = not hasattr(model, "lm_head") and isinstance(
        model.model.embed_tokens, nn.QuantizedEmbedding
    )
    return layers + int(tied)


def primitive_counts(out: mx.array, tmp_path: Path) -> Counter:
    """The primitives in ``out``'s (unevaluated) graph, by name."""
    path = tmp_path / "graph.dot"
    mx.export_to_dot(str(path), out)
    return Counter(re.findall(r'label ="(\w+)"', path.read_text()))


def launches_with_prefix(prefix: str) -> int:
    launches = mlx_qmm._loader._ext.metal_simulator_launches()
    return sum(n for kernel, n in launches.items() if kernel.startswith(prefix))


# ---------------------------------------------------------------------------
# A float32-accumulation reference for half-precision models

# Stock's CPU quantized matmul accumulates float16/bfloat16 in the input type
# (README: against a float32 reference its error at K = 4096 is about 9e-3 in
# float16 and 7e-2 in bfloat16), ours in float32, so a half-precision model's
# logits are compared against the same model whose quantized matmuls are
# stock's in float32 on the upcast operands, rounded to the model's dtype once:
# what our kernels compute, up to float32 summation order. The rest of the
# model (norms, attention, activations) is stock's in both runs.


def _float32_quantized_matmul(x, layer, bias=None):
    out = mx.quantized_matmul(
        x.astype(mx.float32),
        layer["weight"],
        scales=layer["scales"].astype(mx.float32),
        biases=layer["biases"].astype(mx.float32),
        transpose=True,
        group_size=layer.group_size,
        bits=layer.bits,
        mode=layer.mode,
    )
    if bias is not None:
        out = out + bias.astype(mx.float32)
    return out.astype(x.dtype)


class Float32AccumulationQuantizedLinear(nn.QuantizedLinear):
    def __call__(self, x):
        return _float32_quantized_matmul(x, self, self.get("bias"))


class Float32AccumulationQuantizedEmbedding(nn.QuantizedEmbedding):
    def as_linear(self, x):
        return _float32_quantized_matmul(x, self)


def reference_logits(model: nn.Module, inputs: mx.array) -> mx.array:
    """Logits of a stock quantized model with float32 accumulation in its
    quantized matmuls (the model is left as it was)."""
    swaps = {
        nn.QuantizedLinear: Float32AccumulationQuantizedLinear,
        nn.QuantizedEmbedding: Float32AccumulationQuantizedEmbedding,
    }
    swapped = []
    for _, module in model.named_modules():
        if type(module) in swaps:
            swapped.append((module, type(module)))
            module.__class__ = swaps[type(module)]
    try:
        logits = model(inputs)
        mx.eval(logits)
    finally:
        for module, cls in swapped:
            module.__class__ = cls
    return logits


# Logits pass through every layer of the model, each of which rounds its
# output to the model's dtype; where ours and the reference round a value to
# neighbouring half-precision numbers the difference travels on through the
# following layers. Measured on these models (relative to the reference's
# norm): float32 up to 8e-7, float16 up to 8e-4, bfloat16 up to 3.5e-3 (stock's
# own half-precision logits are 5e-3 and 4e-2 away from the same reference), so
# the bound is twice the per-op tolerance.
LOGITS_SCALE = 2.0

# ---------------------------------------------------------------------------
# Configurations: every bits value and group size in every dtype.

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
BITS_AND_GROUPS = [(4, 64), (8, 32), (3, 128), (2, 64), (5, 32), (6, 128)]


def logits_cases() -> list:
    """(family, dtype, bits, group size). On the CPU every family in every
    dtype, and each dtype sees every bits value and group size; on the
    simulator one dtype per family, still covering them all."""
    dtypes = list(DTYPES)
    cases = []
    for i, family in enumerate(FAMILIES):
        if METAL_SIM:
            cases.append((family, dtypes[i % 3], *BITS_AND_GROUPS[i]))
            continue
        for j, dtype in enumerate(dtypes):
            bits, group = BITS_AND_GROUPS[(i + 2 * j) % len(BITS_AND_GROUPS)]
            cases.append((family, dtype, bits, group))
    return cases


LOGITS_CASES = logits_cases()


def test_configurations_cover_every_bits_group_and_dtype():
    assert {c[0] for c in LOGITS_CASES} == set(FAMILIES)
    assert {c[1] for c in LOGITS_CASES} == set(DTYPES)
    for dtype in [None] if METAL_SIM else DTYPES:
        cases = [c for c in LOGITS_CASES if dtype in (None, c[1])]
        assert {c[2] for c in cases} == {2, 3, 4, 5, 6, 8}
        assert {c[3] for c in cases} == {32, 64, 128}


# ---------------------------------------------------------------------------
# patch


@pytest.mark.parametrize("family,dtype_name,bits,group_size", LOGITS_CASES)
def test_patched_logits_match_stock(
    family, dtype_name, bits, group_size, tmp_path, seed
):
    dtype = DTYPES[dtype_name]
    config = family_config(family)
    model = build(config, dtype)
    quantize_like_mlx_lm(model, config, group_size, bits)
    assert nn.Linear not in count_types(model)  # every projection is quantized
    inputs = tokens()
    # In float32 the reference is the stock model itself.
    reference = (
        reference_logits(model, inputs) if dtype != mx.float32 else model(inputs)
    )
    mx.eval(reference)

    before = snapshot(model)
    assert mlx_qmm.patch(model) is model
    assert_patched(model, before)

    launches = launches_with_prefix("qmm_affine_t")
    logits = model(inputs)
    primitives = primitive_counts(logits, tmp_path)
    assert primitives["QmmAffineQuantizedMatmul"] == quantized_matmuls(model)
    assert primitives["QuantizedMatmul"] == 0
    evaluate_poisoned(logits)
    assert logits.shape == (2, SEQUENCE, VOCAB) and logits.dtype == dtype
    assert_close(logits, reference, dtype, seed, scale=LOGITS_SCALE)
    if METAL_SIM:
        launched = launches_with_prefix("qmm_affine_t") - launches
        assert launched == quantized_matmuls(model)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_greedy_generation_is_identical(family, tmp_path, seed):
    """float32: mlx_lm.generate's 32 greedy tokens (prompt, then one token at
    a time through the KV cache) are the same with our kernels."""
    config = family_config(family)
    model = build(config)
    bits, group_size = (4, 64) if family in ("llama", "qwen2", "gemma") else (8, 32)
    quantize_like_mlx_lm(model, config, group_size, bits)
    tokenizer = mlx_lm.tokenizer_utils.load(write_tokenizer(tmp_path, VOCAB))
    prompt = " ".join(f"w{t}" for t in tokens(1, 6)[0].tolist())

    stock = mlx_lm.generate(model, tokenizer, prompt, max_tokens=GENERATED_TOKENS)
    mlx_qmm.patch(model)
    launches = launches_with_prefix("qmv_affine")
    ours = mlx_lm.generate(model, tokenizer, prompt, max_tokens=GENERATED_TOKENS)
    assert ours == stock
    # The end-of-sequence token lies outside the model's vocabulary, so every
    # generation runs its full length.
    assert len(ours.split()) == GENERATED_TOKENS
    if METAL_SIM:
        # Each token after the first is one row through every quantized
        # matmul: the matrix-vector kernel.
        decode_steps = GENERATED_TOKENS - 1
        assert launches_with_prefix("qmv_affine") >= (
            launches + decode_steps * quantized_matmuls(model)
        )


# ---------------------------------------------------------------------------
# mlx_qmm.nn.quantize


def test_quantize_signature_mirrors_stock():
    import inspect

    def parameters(function):
        return [
            (p.name, p.kind, p.default)
            for p in inspect.signature(function).parameters.values()
        ]

    assert parameters(qnn.quantize) == parameters(nn.quantize)


@pytest.mark.parametrize(
    "family", ["llama", "qwen2"] if METAL_SIM else ["llama", "qwen2", "phi3", "gemma"]
)
def test_quantize_matches_stock_quantize(family, seed):
    """mlx_qmm.nn.quantize with a class_predicate returning per-layer dicts
    (as mlx-lm's loader does for mixed-precision checkpoints) quantizes
    exactly as mlx.nn.quantize does, onto our layers."""
    config = family_config(family)
    model = build(config, mx.bfloat16)
    stock_model = build(config, mx.bfloat16)
    stock_model.update(model.parameters())

    def predicate(path: str, module: nn.Module):
        if not hasattr(module, "to_quantized"):
            return False
        if "down_proj" in path or "v_proj" in path or "qkv_proj" in path:
            return {"group_size": 32, "bits": 6}
        return True

    assert qnn.quantize(model, 64, 3, class_predicate=predicate) is None
    nn.quantize(stock_model, 64, 3, class_predicate=predicate)
    types = count_types(model)
    assert not set(types) & set(STOCK_CLASSES.values())
    stock_types = count_types(stock_model)
    for ours, stock in STOCK_CLASSES.items():
        assert types[ours] == stock_types[stock]
    for path, module in model.named_modules():
        if isinstance(module, nn.QuantizedLinear):
            stock_layer = dict(stock_model.named_modules())[path]
            assert (module.bits, module.group_size) == (
                stock_layer.bits,
                stock_layer.group_size,
            )
    params, stock_params = (
        tree_flatten(model.parameters()),
        dict(tree_flatten(stock_model.parameters())),
    )
    assert len(params) == len(stock_params)
    for key, value in params:
        assert value.dtype == stock_params[key].dtype, key
        assert mx.array_equal(value, stock_params[key]).item(), key
    inputs = tokens()
    assert_close(
        evaluate_poisoned(model(inputs)),
        reference_logits(stock_model, inputs),
        mx.bfloat16,
        seed,
        scale=LOGITS_SCALE,
    )


# ---------------------------------------------------------------------------
# mlx_qmm.load and checkpoints


def write_tokenizer(directory: Path, vocab_size: int) -> Path:
    """A word-level tokenizer (words ``w0`` .. ``w{vocab_size-1}``) in the
    files transformers' AutoTokenizer reads, built offline. Its end-of-sequence
    token has the id ``vocab_size``, which the model never produces."""
    vocab = {f"w{i}": i for i in range(vocab_size)}
    vocab["<eos>"] = vocab_size
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece()  # joins words with spaces
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<eos>",
                "unk_token": "<eos>",
            }
        )
    )
    return directory


def write_float_checkpoint(directory: Path, family: str) -> dict:
    """A Hugging Face-style float checkpoint: config, safetensors, tokenizer."""
    config = family_config(family)
    model = build(config)
    save_model(directory, model)
    save_config(dict(config), directory / "config.json")
    write_tokenizer(directory, VOCAB)
    return config


def load_stock(path: Path):
    return mlx_lm.load(str(path))


def assert_same_weights(a: nn.Module, b: nn.Module):
    a, b = dict(tree_flatten(a.parameters())), dict(tree_flatten(b.parameters()))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert mx.array_equal(a[key], b[key]).item(), key


# Gemma: tied embeddings, so the output projection is a QuantizedEmbedding.
# (Not Qwen2 here: transformers gives a qwen2 directory its own Qwen2Tokenizer
# whatever tokenizer_config.json says, and that cannot read a word-level
# tokenizer.json.)
@pytest.mark.parametrize(
    "family,recipe",
    [("llama", "mixed_3_6")]
    if METAL_SIM
    else [("llama", "mixed_3_6"), ("gemma", None)],
)
def test_load_converted_directory(family, recipe, tmp_path, seed):
    """mlx_lm.convert writes a quantized directory (with per-layer entries in
    its config for a mixed recipe); mlx_qmm.load returns the same model and
    tokenizer as mlx_lm.load, on our kernels, and a save of the patched model
    loads back with stock mlx-lm unchanged."""
    write_float_checkpoint(tmp_path / "float", family)
    converted = tmp_path / "quantized"
    convert(
        str(tmp_path / "float"),
        str(converted),
        quantize=True,
        q_group_size=32,
        q_bits=4,
        dtype="float32",
        quant_predicate=recipe,
    )
    config = json.loads((converted / "config.json").read_text())
    per_layer = {k: v for k, v in config["quantization"].items() if "." in k}
    assert bool(per_layer) == (recipe is not None)

    model, tokenizer = mlx_qmm.load(converted)
    stock_model, stock_tokenizer = load_stock(converted)
    types = count_types(model)
    assert types[qnn.QuantizedLinear] == count_types(stock_model)[nn.QuantizedLinear]
    assert not set(types) & set(STOCK_CLASSES.values())
    assert_same_weights(model, stock_model)
    for path, params in per_layer.items():
        layer = dict(model.named_modules())[path]
        assert (layer.bits, layer.group_size) == (params["bits"], params["group_size"])
    assert tokenizer.encode("w1 w2 w3") == stock_tokenizer.encode("w1 w2 w3")
    assert tokenizer.encode("w1 w2 w3") == [1, 2, 3]
    assert tokenizer.eos_token_ids == stock_tokenizer.eos_token_ids == {VOCAB}

    inputs = tokens()
    logits = evaluate_poisoned(model(inputs))
    assert_close(logits, stock_model(inputs), mx.float32, seed, scale=LOGITS_SCALE)

    # Ours saved, stock loaded: the same checkpoint.
    saved = tmp_path / "saved"
    save_model(saved, model)
    save_config(config, saved / "config.json")
    tokenizer.save_pretrained(str(saved))
    reloaded, _ = load_stock(saved)
    assert_same_weights(reloaded, stock_model)
    assert count_types(reloaded)[nn.QuantizedLinear] == types[qnn.QuantizedLinear]
    # And back onto ours.
    assert_same_weights(mlx_qmm.load(saved)[0], stock_model)


def test_load_without_mlx_lm_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"mlx-qmm\[lm\]"):
        mlx_qmm.load(tmp_path)


# ---------------------------------------------------------------------------
# Training


# The families whose forward pass takes input embeddings (Phi-3's and
# Gemma's do not), so that the gradient reaches the model's input.
GRADIENT_FAMILIES = ["qwen2"] if METAL_SIM else ["llama", "qwen2", "qwen3"]


@pytest.mark.parametrize("family", GRADIENT_FAMILIES)
def test_gradients_match_stock(family, seed):
    """float32 gradients of a language-model loss through the quantized
    layers with respect to the input embeddings and every layer's scales,
    biases and bias (qwen2's q/k/v) equal stock's."""
    config = family_config(family)
    model = build(config)
    quantize_like_mlx_lm(model, config, 32, 4)
    model.unfreeze(keys=["scales", "biases", "bias"], strict=False)
    trainable = dict(tree_flatten(model.trainable_parameters()))
    assert any(k.endswith(".scales") for k in trainable)
    assert (family == "qwen2") == any(k.endswith("_proj.bias") for k in trainable)
    inputs, targets = tokens(), tokens()
    embeddings = model.model.embed_tokens(inputs)

    def loss(params, embeddings):
        model.update(params)
        logits = model(inputs, input_embeddings=embeddings)
        return nn.losses.cross_entropy(logits, targets).mean()

    def gradients():
        grad = mx.grad(loss, argnums=(0, 1))
        params, embedding_grad = grad(model.trainable_parameters(), embeddings)
        flat = dict(tree_flatten(params))
        flat["input_embeddings"] = embedding_grad
        mx.eval(flat)
        return flat

    stock = gradients()
    mlx_qmm.patch(model)
    ours = gradients()
    assert ours.keys() == stock.keys()
    for key in stock:
        # The backward pass crosses the same layers as the logits (measured:
        # up to 2e-6).
        assert_close(ours[key], stock[key], mx.float32, seed, scale=LOGITS_SCALE)


LORA_FAMILIES = ["llama"] if METAL_SIM else ["llama", "qwen2", "phi3", "gemma"]


@pytest.mark.parametrize("family", LORA_FAMILIES)
def test_lora_training_matches_stock(family, seed):
    """mlx-lm's LoRA layers over a quantized base, trained with Adam on
    mlx-lm's loss: the same first gradients and the same losses step by step
    with our kernels."""
    config = family_config(family)
    base = build(config)
    quantize_like_mlx_lm(base, config, 64, 4)
    weights = base.parameters()
    batch = tokens(2, SEQUENCE + 1)
    lengths = mx.array([[1, SEQUENCE], [1, SEQUENCE - 3]])
    steps = 4

    def train(patched: bool) -> tuple[list[float], dict]:
        model = build(config)
        quantize_like_mlx_lm(model, config, 64, 4)
        model.update(weights)
        if patched:
            mlx_qmm.patch(model)
        model.freeze()
        mx.random.seed(seed)  # the same LoRA initialisation in both runs
        linear_to_lora_layers(model, LAYERS, {"rank": 4, "scale": 10.0, "dropout": 0.0})
        trainable = dict(tree_flatten(model.trainable_parameters()))
        assert trainable and all(".lora_" in k for k in trainable)
        lora_base = model.layers[0].self_attn.o_proj.linear
        assert type(lora_base) is (
            qnn.QuantizedLinear if patched else nn.QuantizedLinear
        )
        model.train()
        optimizer = optim.Adam(learning_rate=1e-3)
        loss_and_grad = nn.value_and_grad(
            model, lambda m, b, n: default_loss(m, b, n)[0]
        )
        losses, first_grads = [], None
        for _ in range(steps):
            loss, grads = loss_and_grad(model, batch, lengths)
            first_grads = first_grads or dict(tree_flatten(grads))
            optimizer.update(model, grads)
            mx.eval(loss, model.parameters(), optimizer.state, first_grads)
            losses.append(loss.item())
        return losses, first_grads

    stock, stock_grads = train(patched=False)
    ours, our_grads = train(patched=True)
    assert stock[-1] < stock[0]  # it does train
    # The first step: the forward pass and the gradients of the LoRA weights
    # through our quantized layers, within float32 rounding.
    assert abs(ours[0] - stock[0]) <= TOLERANCE[mx.float32] * abs(stock[0])
    assert our_grads.keys() == stock_grads.keys()
    for key in stock_grads:
        assert_close(
            our_grads[key], stock_grads[key], mx.float32, seed, scale=LOGITS_SCALE
        )
    # Later steps: Adam divides each gradient component by its own size, so a
    # component near zero (lora_a's, while lora_b is still small) steps by
    # about the learning rate in a direction its float32 rounding decides, and
    # the two runs' weights drift apart by more than their gradients do.
    # Measured over 32 seeds: up to 3.5e-5 relative in the fourth step's loss;
    # with the input gradient of every down_proj cut (stop_gradient), 9e-2 to 1.
    np.testing.assert_allclose(ours, stock, rtol=1e-3)
