"""Time an mlx-lm model with stock's layers and then patched onto mlx-qmm's
kernels, side by side in one process: prompt processing and greedy decoding.

    python bench/bench_mlx_lm.py --dtype bfloat16 float32
    python bench/bench_mlx_lm.py --model path/to/mlx-lm-model-directory

Without --model, a Llama-shaped model is built from --hidden, --layers,
--vocab with random weights and quantized as ``mlx_lm.convert -q`` does
(--bits, --group-size). The prompt is --prompt random token ids; decoding is
greedy (mlx-lm's generate_step, KV cache) for --tokens tokens. Each figure is
the median over --repeats runs after a warm-up run. Needs mlx-lm
(``pip install ".[lm]"``).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import mlx.core as mx
import mlx_qmm
from mlx.utils import tree_map

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def random_llama(args, dtype):
    from mlx_lm.models import llama
    from mlx_lm.utils import quantize_model

    config = {
        "model_type": "llama",
        "hidden_size": args.hidden,
        "intermediate_size": args.intermediate or 11 * args.hidden // 4,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.hidden // 128,
        "num_key_value_heads": max(1, args.hidden // 512),
        "rms_norm_eps": 1e-5,
        "vocab_size": args.vocab,
        "tie_word_embeddings": False,
    }
    model = llama.Model(llama.ModelArgs.from_dict(config))
    model.set_dtype(dtype)
    with contextlib.redirect_stdout(sys.stderr):  # mlx-lm prints bits per weight
        quantize_model(model, config, args.group_size, args.bits)
    mx.eval(model.parameters())
    return model, config


def cast_floats(dtype):
    def cast(a: mx.array) -> mx.array:
        return a.astype(dtype) if mx.issubdtype(a.dtype, mx.floating) else a

    return cast


def run_once(model, prompt: mx.array, tokens: int) -> tuple[float, float, list]:
    """(prompt seconds, seconds per decoded token, generated ids)."""
    from mlx_lm.generate import generate_step

    ids = []
    start = time.perf_counter()
    first = None
    for token, _ in generate_step(prompt, model, max_tokens=tokens):
        ids.append(int(token))
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return first - start, (end - first) / max(1, len(ids) - 1), ids


def measure(model, prompt, tokens, repeats):
    run_once(model, prompt, tokens)  # warm-up
    runs = [run_once(model, prompt, tokens) for _ in range(repeats)]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        runs[0][2],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="an mlx-lm model directory")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=None)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument(
        "--dtype",
        nargs="+",
        default=None,
        choices=list(DTYPES),
        help="default: bfloat16, or a --model's own dtype",
    )
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    parser.add_argument("--tokens", type=int, default=16, help="tokens to generate")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    try:
        import mlx_lm
    except ImportError:
        print('bench_mlx_lm needs mlx-lm: pip install ".[lm]"', file=sys.stderr)
        return 1

    print(
        f"mlx {mx.__version__}, mlx-lm {mlx_lm.__version__}, on "
        f"{mx.default_device()}, {mlx_qmm.backend_info()['cpu_threads']} threads",
        file=sys.stderr,
    )
    header = (
        f"{'dtype':>9} {'prompt':>6} {'stock tok/s':>12} {'ours tok/s':>11} "
        f"{'speedup':>8} {'decode':>6} {'stock tok/s':>12} {'ours tok/s':>11} "
        f"{'speedup':>8}  same tokens"
    )
    rows = []
    for dtype_name in args.dtype or [None if args.model else "bfloat16"]:
        if args.model:
            model, _ = mlx_lm.load(args.model)
            if dtype_name is not None:
                model.update(
                    tree_map(cast_floats(DTYPES[dtype_name]), model.parameters())
                )
            dtype_name = str(model.model.norm.weight.dtype).removeprefix("mlx.core.")
            vocab = model.model.embed_tokens.weight.shape[0]
        else:
            dtype = DTYPES[dtype_name]
            model, config = random_llama(args, dtype)
            vocab = config["vocab_size"]
        prompt = mx.random.randint(0, vocab, (args.prompt,))
        print(f"{dtype_name}: stock", file=sys.stderr, flush=True)
        stock = measure(model, prompt, args.tokens, args.repeats)
        mlx_qmm.patch(model)
        print(f"{dtype_name}: ours", file=sys.stderr, flush=True)
        ours = measure(model, prompt, args.tokens, args.repeats)
        rows.append(
            f"{dtype_name:>9} {args.prompt:>6} {args.prompt / stock[0]:>12.1f} "
            f"{args.prompt / ours[0]:>11.1f} {stock[0] / ours[0]:>7.2f}x "
            f"{args.tokens:>6} {1 / stock[1]:>12.2f} {1 / ours[1]:>11.2f} "
            f"{stock[1] / ours[1]:>7.2f}x  {'yes' if ours[2] == stock[2] else 'no'}"
        )
        del model
    print(header)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
