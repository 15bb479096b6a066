"""A KV-cached sampler for patched Llama-style models: prefill once, then one lean step per token.

Knows torch and triton, and the loaded model only through `decode_model.read_decoder`.  `FastGenerator`
prefills the (left-padded) prompts with one forward of the model itself (its own KV cache, copied into
a preallocated one), then runs `Decoder.step` per token: our kernels, no module dispatch, the 4-bit
weights read directly by the NF4 few-row matmul.  On CUDA the step (forward, sampling and bookkeeping)
is captured once per (batch, cache length) in a CUDA graph and replayed; `cuda_graph=False` runs it
eagerly.  The output follows transformers' `generate`: prompt + completion ids [B, P + n], tokens after
a row's EOS set to the pad id, n the steps until every row has ended (or max_new_tokens).
It does not know generation configs or trainers: the caller maps its settings onto `Sampling`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .decoder import Decoder, read_decoder
from .sampling import Sampling, next_tokens

log = logging.getLogger(__name__)

CACHE_ROUND = 64  # cache length rounded up, so prompts of similar lengths reuse one captured graph
SYNC_EVERY = 8  # steps between host checks of "every row has ended"


class UnsupportedModel(ValueError):
    """The fast path cannot compute this model exactly; the message says why."""


@dataclass(eq=False)
class _State:
    """Fixed buffers one step reads and writes (fixed addresses, for the CUDA graph)."""

    tok: torch.Tensor  # [B] long, the token to feed
    pos: torch.Tensor  # [B] long, its rope position
    slot: torch.Tensor  # [1] long, its cache index
    step: torch.Tensor  # [1] long, index of the token being chosen
    key_ok: torch.Tensor  # [B, L] bool, cache slots each row attends to
    finished: torch.Tensor  # [B] bool
    out: torch.Tensor  # [B, max_new] long
    cos: torch.Tensor  # [L, R] rope table
    sin: torch.Tensor
    cache_k: torch.Tensor  # [layers, B, Hkv, L, D]
    cache_v: torch.Tensor
    eos: torch.Tensor | None = None  # [E] long


class FastGenerator:
    """Generation for one model.  keep_buffers=True keeps the KV cache and the captured graph across
    calls (the next call of the same shape replays at once); False gives their memory back after each
    call, for a caller that needs it in between - GRPO trains between rollouts, and a 16 x 640-token
    cache of a 4B model is 1.5 GiB - and captures again on the next call (one eager token step and a
    capture: milliseconds against seconds of sampling)."""

    def __init__(self, model, cuda_graph: bool = True, keep_buffers: bool = True):
        self.model = model
        self.cuda_graph = cuda_graph
        self.keep_buffers = keep_buffers
        self._decoder: Decoder | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_key: tuple | None = None
        self._state: _State | None = None

    def unsupported(self, max_len: int | None = None) -> str | None:
        """None when the fast path can run this model, else the reason."""
        got = read_decoder(self.model, max_len)
        if isinstance(got, str):
            return got
        if self._decoder is None or self._decoder.key() != got.key():
            self._decoder, self._state, self._graph = got, None, None  # new tensors: new buffers
        return None

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        max_new_tokens: int,
        sampling: Sampling = Sampling(),
        eos_token_ids: tuple[int, ...] = (),
        pad_token_id: int | None = None,
        min_new_tokens: int = 0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Prompt + completion ids [B, P + n] (see the module docstring)."""
        b, p = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        length = -(-(p + max_new_tokens) // CACHE_ROUND) * CACHE_ROUND
        reason = self.unsupported(length)
        if reason:
            raise UnsupportedModel(reason)
        dec = self._decoder
        assert dec is not None  # unsupported() read it
        dec.refresh()
        pad = pad_token_id if pad_token_id is not None else (eos_token_ids[0] if eos_token_ids else 0)
        st = self._prepare(dec, b, length, max_new_tokens, pad)
        logits = self._prefill(dec, st, input_ids, attention_mask)
        key = (b, length, max_new_tokens, sampling, tuple(eos_token_ids), pad, min_new_tokens)
        if self._graph_key != key or st.eos is None:
            self._graph, self._graph_key = None, None
            st.eos = torch.tensor(list(eos_token_ids) or [-1], device=input_ids.device)
        eos = st.eos

        def choose(logits):
            if min_new_tokens > 0 and eos_token_ids:
                ban = torch.where(st.step < min_new_tokens, float("-inf"), 0.0)  # [1]
                logits[:, eos] = logits[:, eos] + ban
            nxt = next_tokens(logits, sampling, generator)
            nxt = torch.where(st.finished, pad, nxt)
            st.out.index_copy_(1, st.step, nxt[:, None])
            st.finished |= (nxt[:, None] == eos).any(dim=1)
            st.tok.copy_(nxt)
            st.step += 1

        def step():
            st.key_ok.index_fill_(1, st.slot, True)
            cos, sin = st.cos[st.pos][:, None], st.sin[st.pos][:, None]  # [B, 1, R]
            choose(dec.step(st.tok, cos, sin, st.slot, st.key_ok, st.cache_k, st.cache_v))
            st.pos += 1
            st.slot += 1

        choose(logits)
        done = 1
        run = step if generator is not None else self._runner(step, key, input_ids.device)
        while done < max_new_tokens:
            if done % SYNC_EVERY == 0 and bool(st.finished.all()):
                break
            run()
            done += 1
        ids = torch.cat([input_ids, st.out[:, : self._kept(st.out[:, :done], eos)]], dim=1)
        if not self.keep_buffers:
            self.release()
        return ids

    def release(self) -> None:
        """Drops the KV cache, the step's buffers and the captured graph (the next call makes them again)."""
        self._state, self._graph, self._graph_key = None, None, None

    @staticmethod
    def _kept(out: torch.Tensor, eos: torch.Tensor) -> int:
        """Steps transformers would have run: up to the step where the last row ended."""
        hit = (out[..., None] == eos).any(dim=-1)
        if not bool(hit.any(dim=1).all()):
            return out.shape[1]
        return int(hit.int().argmax(dim=1).max()) + 1

    def _prepare(self, dec: Decoder, b: int, length: int, max_new: int, pad: int) -> _State:
        dev = dec.device
        st = self._state
        shape = (len(dec.layers), b, dec.n_kv, length, dec.head_dim)
        if st is None or tuple(st.cache_k.shape) != shape or st.out.shape[1] != max_new:
            self._graph = None
            self._state = None
            cos, sin = dec.rope_table(length)

            def z(*s, dtype=torch.long):
                return torch.zeros(*s, dtype=dtype, device=dev)

            st = _State(
                z(b), z(b), z(1), z(1), z(b, length, dtype=torch.bool), z(b, dtype=torch.bool), z(b, max_new),
                cos, sin, z(*shape, dtype=dec.dtype), z(*shape, dtype=dec.dtype),
            )  # fmt: skip
            self._state = st
        st.step.zero_()
        st.finished.zero_()
        st.out.fill_(pad)
        st.key_ok.zero_()
        return st

    def _prefill(self, dec: Decoder, st: _State, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One forward of the model over the prompts; its KV cache lands in slots [0, P)."""
        p = ids.shape[1]
        positions = (mask.long().cumsum(-1) - 1).clamp_min(0)
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        out = inner(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        cache = out.past_key_values
        if cache is None:  # e.g. gradient checkpointing left on in training mode drops the cache
            raise UnsupportedModel("the model's forward returned no KV cache for the prompt")
        for i in range(len(dec.layers)):
            k, v = _layer_kv(cache, i)
            st.cache_k[i, :, :, :p].copy_(k)
            st.cache_v[i, :, :, :p].copy_(v)
        st.key_ok[:, :p].copy_(mask.bool())
        st.pos.copy_(mask.long().sum(-1))
        st.slot.fill_(p)
        return out.logits[:, -1, :].float()

    def _runner(self, step, key, device: torch.device):
        """The step itself, or a replay of its CUDA graph (captured after one eager step)."""
        dec = self._decoder
        if not (self.cuda_graph and device.type == "cuda" and dec is not None and dec.embed.weight.is_cuda):
            return step
        if self._graph is not None:
            return self._graph.replay
        state = {"eager": True}

        def first_then_graph():
            if state.pop("eager", False):
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    step()  # the real step (Triton autotunes here), on a side stream as capture wants
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                try:
                    with torch.cuda.graph(graph):
                        step()  # recorded, not run
                except Exception as exc:  # e.g. an allocator setting capture refuses: stay eager
                    log.warning("fast sampler: CUDA graph capture failed (%s); running eagerly", exc)
                    self.cuda_graph = False
                    state["eager_only"] = True
                    return
                self._graph, self._graph_key = graph, key
                return
            if state.get("eager_only"):
                step()
                return
            assert self._graph is not None  # captured by the first call
            self._graph.replay()

        return first_then_graph


def _layer_kv(cache, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return layers[i].keys, layers[i].values
    return cache[i][0], cache[i][1]


def generate(model, input_ids, attention_mask=None, **kwargs) -> torch.Tensor:
    """One-off `FastGenerator(model).generate(...)` (no graph reuse across calls)."""
    cuda_graph = kwargs.pop("cuda_graph", True)
    return FastGenerator(model, cuda_graph).generate(input_ids, attention_mask, **kwargs)


__all__ = ["FastGenerator", "Sampling", "UnsupportedModel", "generate"]
