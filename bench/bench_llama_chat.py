"""Chat speed of llama.cpp as Tunesmith installs it: an 8B Q4_K_M GGUF on the GPU and on the CPU.

Writes a Llama-3.1-8B-architecture GGUF with random weights in the Q4_K_M layout (Q4_K everywhere,
Q6_K for the output head and for attn_v / ffn_down in the layers llama.cpp's Q4_K_M gives more bits),
straight from random blocks (no F16 file, no quantizer run: seconds instead of minutes), then times
prompt processing and greedy generation through llama-cpp-python with all layers on the GPU
(`n_gpu_layers=-1`) and with none (CPU threads), and prints one JSON line per placement.

    python bench/bench_llama_chat.py --out /tmp/llama8b.gguf [--prompt 256] [--gen 128] [--cpu-gen 32]
                                     [--only gpu|cpu]

Random weights make the text meaningless but the work per token the same as a real 8B Q4_K_M file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# llama_cpp before numpy: with numpy imported first, the CUDA build of llama-cpp-python 0.3.36
# segfaulted in llama_model_load_from_file on the H100 (reproduced with a two-line script).
import llama_cpp
import numpy as np

# Llama-3.1-8B
N_LAYER, N_EMBD, N_FF, N_HEAD, N_KV, VOCAB = 32, 4096, 14336, 32, 8, 128256
QK_K = 256
Q4_K_BYTES, Q6_K_BYTES = 144, 210  # bytes per 256-value block (ggml's block_q4_K / block_q6_K)


def _q4_k(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Random Q4_K blocks with small, finite scales (d, dmin as f16 at the front of each block)."""
    blocks = rng.integers(0, 256, size=(rows, cols // QK_K, Q4_K_BYTES), dtype=np.uint8)
    head = np.array([2e-4, 1e-4], dtype=np.float16).view(np.uint8)
    blocks[:, :, :4] = head
    return blocks.reshape(rows, -1)


def _q6_k(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Random Q6_K blocks: ql[128] qh[64] int8 scales[16] then d (f16) at the end of each block."""
    blocks = rng.integers(0, 256, size=(rows, cols // QK_K, Q6_K_BYTES), dtype=np.uint8)
    blocks[:, :, 192:208] = rng.integers(1, 8, size=(rows, cols // QK_K, 16), dtype=np.uint8)
    blocks[:, :, 208:] = np.array([1e-4], dtype=np.float16).view(np.uint8)
    return blocks.reshape(rows, -1)


def _more_bits(layer: int) -> bool:
    """The layers where llama.cpp's Q4_K_M keeps attn_v and ffn_down at Q6_K."""
    return layer < N_LAYER // 8 or layer >= 7 * N_LAYER // 8 or (layer - N_LAYER // 8) % 3 == 2


def write_gguf(path: Path, seed: int = 0) -> None:
    import gguf

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("random-llama-3.1-8b")
    w.add_context_length(8192)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_KV)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_vocab_size(VOCAB)
    # A SentencePiece-style vocabulary: control tokens, the 256 byte tokens, then plain pieces.
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(VOCAB - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (VOCAB - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    )
    q4k, q6k = gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q6_K
    w.add_tensor("token_embd.weight", _q4_k(VOCAB, N_EMBD, rng), raw_dtype=q4k)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    w.add_tensor("output.weight", _q6_k(VOCAB, N_EMBD, rng), raw_dtype=q6k)
    kv = N_EMBD // N_HEAD * N_KV
    for i in range(N_LAYER):
        more = _more_bits(i)
        shapes = {
            "attn_q": (N_EMBD, N_EMBD, False),
            "attn_k": (kv, N_EMBD, False),
            "attn_v": (kv, N_EMBD, more),
            "attn_output": (N_EMBD, N_EMBD, False),
            "ffn_gate": (N_FF, N_EMBD, False),
            "ffn_up": (N_FF, N_EMBD, False),
            "ffn_down": (N_EMBD, N_FF, more),
        }
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        for name, (rows, cols, six) in shapes.items():
            data = _q6_k(rows, cols, rng) if six else _q4_k(rows, cols, rng)
            w.add_tensor(f"blk.{i}.{name}.weight", data, raw_dtype=q6k if six else q4k)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def time_placement(path: Path, gpu: bool, n_prompt: int, n_gen: int, threads: int) -> dict:
    from llama_cpp import Llama

    n_ctx = max(1024, n_prompt + n_gen + 8)
    t0 = time.perf_counter()
    # n_batch = n_ctx: llama-cpp-python keeps n_batch rows of logits without logits_all, indexed by position.
    llm = Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_gpu_layers=-1 if gpu else 0,
        n_threads=threads,
        n_batch=n_ctx,
        verbose=False,
    )
    load_s = time.perf_counter() - t0
    prompt = [1] + [300 + (i * 7919) % (VOCAB - 300) for i in range(n_prompt - 1)]
    llm.eval(prompt[:8])  # warm-up: first kernels, first allocations
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    prompt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(n_gen):  # greedy, one token at a time: what a chat answer does
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([token])
    gen_s = time.perf_counter() - t0
    llm.close()
    return {
        "placement": "gpu" if gpu else f"cpu ({threads} threads)",
        "load_s": round(load_s, 2),
        "prompt_tokens": n_prompt,
        "prompt_tok_s": round(n_prompt / prompt_s, 1),
        "gen_tokens": n_gen,
        "gen_tok_s": round(n_gen / gen_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the random 8B GGUF")
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--cpu-gen", type=int, default=32, help="tokens generated on the CPU (slower)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    # A CUDA build still sends big prompt batches to the GPU with no layers there: time the CPU alone
    # in its own process with CUDA_VISIBLE_DEVICES="" (bench/run_llama_gpu.sh does).
    parser.add_argument("--only", choices=("both", "gpu", "cpu"), default="both")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model, to check the script on a CPU")
    args = parser.parse_args()
    if args.tiny:
        global N_LAYER, N_EMBD, N_FF, N_HEAD, N_KV, VOCAB
        N_LAYER, N_EMBD, N_FF, N_HEAD, N_KV, VOCAB = 2, 512, 1024, 8, 2, 2000

    if not args.out.exists():
        t0 = time.perf_counter()
        write_gguf(args.out)
        print(
            json.dumps(
                {
                    "wrote": str(args.out),
                    "gib": round(args.out.stat().st_size / 2**30, 2),
                    "s": round(time.perf_counter() - t0, 1),
                }
            ),
            flush=True,
        )
    if args.only in ("both", "gpu") and llama_cpp.llama_supports_gpu_offload():
        print(json.dumps(time_placement(args.out, True, args.prompt, args.gen, args.threads)), flush=True)
    if args.only in ("both", "cpu"):
        print(
            json.dumps(time_placement(args.out, False, args.prompt, args.cpu_gen, args.threads)), flush=True
        )
    print(
        json.dumps(
            {"llama_cpp": llama_cpp.__version__, "system_info": llama_cpp.llama_print_system_info().decode()}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
