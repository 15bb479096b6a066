"""LoRA projections (single, q/k/v, MLP block) against plain autograd: outputs, dX, dA and dB, with
dense and NF4 base weights (the NF4 reference uses the same dequantized weight)."""

import pytest
import torch
import torch.nn.functional as F
from kernel_compare import assert_close
from torch.utils._python_dispatch import TorchDispatchMode

from tunesmith.kernels.memory.offload import offloaded_checkpoint
from tunesmith.kernels.ops.lora import LoRAProj, lora_linear, lora_qkv
from tunesmith.kernels.ops.lora_mlp import lora_mlp
from tunesmith.kernels.ops.nf4 import NF4Weight


def make_proj(n_in, n_out, r, device, bias=False, nf4=False, scaling=0.7):
    w = torch.randn(n_out, n_in, device=device) / n_in**0.5
    if nf4:
        bnbf = pytest.importorskip("bitsandbytes.functional")
        packed, st = bnbf.quantize_4bit(w.cpu(), blocksize=64, quant_type="nf4", compress_statistics=True)
        w = NF4Weight(
            packed.view(-1).to(device), st.absmax.to(device), st.code.to(device), 64, (n_out, n_in),
            torch.float32, st.state2.absmax.to(device), st.state2.code.to(device), 256, float(st.offset),
        )  # fmt: skip
    A = (torch.randn(r, n_in, device=device) / n_in**0.5).requires_grad_()
    B = torch.randn(n_out, r, device=device).requires_grad_()
    b = torch.randn(n_out, device=device) if bias else None
    return LoRAProj(A, B, w, b, scaling)


def ref_proj(x, p, A, B):
    w = p.weight.dequantize() if isinstance(p.weight, NF4Weight) else p.weight
    return F.linear(x, w, p.bias) + p.scaling * (x @ A.t()) @ B.t()


def clones(*ts):
    return [t.detach().clone().requires_grad_() for t in ts]


@pytest.mark.parametrize("nf4,bias", [(False, True), (True, False)])
def test_lora_linear(nf4, bias, device):
    torch.manual_seed(0)
    p = make_proj(64, 83, 5, device, bias=bias, nf4=nf4)
    x = torch.randn(3, 7, 64, device=device, requires_grad=True)
    dy = torch.randn(3, 7, 83, device=device)
    y = lora_linear(x, p)
    y.backward(dy)
    xr, Ar, Br = clones(x, p.A, p.B)
    yr = ref_proj(xr, p, Ar, Br)
    yr.backward(dy)
    for name, a, b in [
        ("y", y, yr),
        ("dx", x.grad, xr.grad),
        ("dA", p.A.grad, Ar.grad),
        ("dB", p.B.grad, Br.grad),
    ]:
        assert_close(name, a, b)


def test_lora_qkv(device):
    torch.manual_seed(1)
    ps = [make_proj(64, n, 3, device, bias=True) for n in (48, 16, 16)]
    ps[1] = make_proj(64, 16, 3, device, nf4=True)
    x = torch.randn(2, 11, 64, device=device, requires_grad=True)
    outs = lora_qkv(x, *ps)
    dys = [torch.randn_like(o) for o in outs]
    sum((o * d).sum() for o, d in zip(outs, dys, strict=False)).backward()
    xr = x.detach().clone().requires_grad_()
    refs = []
    for p in ps:
        Ar, Br = clones(p.A, p.B)
        refs.append((ref_proj(xr, p, Ar, Br), Ar, Br))
    sum((r * d).sum() for (r, _, _), d in zip(refs, dys, strict=False)).backward()
    assert_close("dx", x.grad, xr.grad)
    for i, (p, (r, Ar, Br)) in enumerate(zip(ps, refs, strict=False)):
        assert_close(f"out{i}", outs[i], r)
        assert_close(f"dA{i}", p.A.grad, Ar.grad)
        assert_close(f"dB{i}", p.B.grad, Br.grad)


@pytest.mark.parametrize("act", ["silu", "gelu", "gelu_tanh"])
def test_lora_mlp(act, device):
    torch.manual_seed(2)
    nf4 = act == "silu"
    gate, up = make_proj(64, 96, 4, device, nf4=nf4), make_proj(64, 96, 4, device, nf4=nf4)
    down = make_proj(96, 64, 4, device, nf4=nf4, scaling=2.0)
    x = torch.randn(5, 13, 64, device=device, requires_grad=True)
    dy = torch.randn(5, 13, 64, device=device)
    lora_mlp(x, gate, up, down, act).backward(dy)
    xr = x.detach().clone().requires_grad_()
    ab = [clones(p.A, p.B) for p in (gate, up, down)]
    g, u = ref_proj(xr, gate, *ab[0]), ref_proj(xr, up, *ab[1])
    a = {"silu": F.silu(g), "gelu": F.gelu(g), "gelu_tanh": F.gelu(g, approximate="tanh")}[act]
    ref_proj(a * u, down, *ab[2]).backward(dy)
    assert_close("dx", x.grad, xr.grad)
    for p, (Ar, Br), n in zip((gate, up, down), ab, ("gate", "up", "down"), strict=False):
        assert_close(f"dA_{n}", p.A.grad, Ar.grad)
        assert_close(f"dB_{n}", p.B.grad, Br.grad)


def tiny_tiles(monkeypatch, rows: int, inter: int, element_size: int = 4) -> None:
    """Makes the MLP block run over tiles of `rows` rows for an intermediate size `inter`."""
    from tunesmith.kernels.ops import lora_mlp as module

    monkeypatch.setattr(module, "MLP_TILE_BYTES", rows * 2 * inter * element_size)
    assert module.tile_rows(10 * rows, inter, element_size) == rows


class WideTensors(TorchDispatchMode):
    """Records the most rows of any new tensor (not a view) an op returns whose last dimension is `width`."""

    def __init__(self, width):
        super().__init__()
        self.width, self.rows = width, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in () if func.is_view else out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[-1] == self.width:
                self.rows = max(self.rows, t.numel() // self.width)
        return out


@pytest.mark.parametrize("act,nf4", [("silu", True), ("gelu", False), ("gelu_tanh", False)])
def test_lora_mlp_over_tiles(monkeypatch, act, nf4, device):
    """65 rows in tiles of 16 (the last of 1): output, dx and every adapter's gradient equal plain
    autograd's, and no [g | u] of more than one tile's rows ever exists, in the forward or the backward."""
    torch.manual_seed(12)
    tiny_tiles(monkeypatch, 16, 96)
    gate, up = make_proj(64, 96, 4, device, nf4=nf4), make_proj(64, 96, 4, device, nf4=nf4)
    down = make_proj(96, 64, 4, device, nf4=nf4, scaling=2.0)
    x = torch.randn(5, 13, 64, device=device, requires_grad=True)
    dy = torch.randn(5, 13, 64, device=device)
    with WideTensors(2 * 96) as wide:
        y = lora_mlp(x, gate, up, down, act)
        y.backward(dy)
    assert 0 < wide.rows <= 16
    xr = x.detach().clone().requires_grad_()
    ab = [clones(p.A, p.B) for p in (gate, up, down)]
    g, u = ref_proj(xr, gate, *ab[0]), ref_proj(xr, up, *ab[1])
    a = {"silu": F.silu(g), "gelu": F.gelu(g), "gelu_tanh": F.gelu(g, approximate="tanh")}[act]
    yr = ref_proj(a * u, down, *ab[2])
    yr.backward(dy)
    assert_close("y", y, yr)
    assert_close("dx", x.grad, xr.grad)
    for p, (Ar, Br), n in zip((gate, up, down), ab, ("gate", "up", "down"), strict=True):
        assert_close(f"dA_{n}", p.A.grad, Ar.grad)
        assert_close(f"dB_{n}", p.B.grad, Br.grad)


def test_lora_mlp_output(device):
    torch.manual_seed(3)
    gate, up, down = make_proj(64, 40, 2, device), make_proj(64, 40, 2, device), make_proj(40, 64, 2, device)
    x = torch.randn(9, 64, device=device)
    g, u = ref_proj(x, gate, gate.A, gate.B), ref_proj(x, up, up.A, up.B)
    assert_close("y", lora_mlp(x, gate, up, down), ref_proj(F.silu(g) * u, down, down.A, down.B))


@pytest.mark.gpu
def test_lora_mlp_bf16_close_to_fp32_reference(device):
    """bf16 on the GPU against the fp32 reference: bf16 rounding only (relative error < 2e-2)."""
    torch.manual_seed(4)
    gate, up, down = (
        make_proj(256, 320, 8, device),
        make_proj(256, 320, 8, device),
        make_proj(320, 256, 8, device),
    )
    x = torch.randn(2, 97, 256, device=device)
    dy = torch.randn(2, 97, 256, device=device)
    ab = [clones(p.A, p.B) for p in (gate, up, down)]
    xr = x.clone().requires_grad_()
    g, u = ref_proj(xr, gate, *ab[0]), ref_proj(xr, up, *ab[1])
    ref_proj(F.silu(g) * u, down, *ab[2]).backward(dy)
    bf = [LoRAProj(p.A.detach().bfloat16().requires_grad_(), p.B.detach().bfloat16().requires_grad_(),
                   p.weight.bfloat16(), None, p.scaling) for p in (gate, up, down)]  # fmt: skip
    xb = x.bfloat16().requires_grad_()
    lora_mlp(xb, *bf).backward(dy.bfloat16())
    assert_close("dx", xb.grad.float(), xr.grad, rtol=2e-2)
    for p, (Ar, Br) in zip(bf, ab, strict=True):
        assert_close("dA", p.A.grad.float(), Ar.grad, rtol=2e-2)
        assert_close("dB", p.B.grad.float(), Br.grad, rtol=2e-2)


@pytest.mark.parametrize(
    "nf4,nested,tiles", [(False, False, 0), (True, False, 0), (False, True, 0), (True, False, 8)]
)
def test_lean_recompute_of_a_residual_layer(monkeypatch, nf4, nested, tiles, device):
    """A checkpointed layer x1 = x + o(q * tanh(k) + v); out = x1 + mlp(x1) recomputed lean (down skipped,
    weights handed from the recompute to the backward) against plain autograd: out, dx, every dA, dB;
    `tiles`: the MLP over tiles of that many rows (its recompute then runs no gate/up GEMM at all)."""
    torch.manual_seed(5)
    if tiles:
        tiny_tiles(monkeypatch, tiles, 96)
    qkv = [make_proj(64, 64, 3, device, nf4=nf4, bias=not nf4) for _ in range(3)]
    o = make_proj(64, 64, 2, device, nf4=nf4)
    mlp = [make_proj(64, 96, 4, device, nf4=nf4), make_proj(64, 96, 4, device, nf4=nf4),
           make_proj(96, 64, 4, device, nf4=nf4, scaling=2.0)]  # fmt: skip
    projs = [*qkv, o, *mlp]
    with torch.no_grad():  # keep two layers' values in a range where fp32 compares at 1e-5
        for p in projs:
            p.B.mul_(0.1)

    def layer(x):
        q, k, v = lora_qkv(x, *qkv)
        x1 = x + lora_linear(q * torch.tanh(k) + v, o)
        return x1 + lora_mlp(x1, *mlp, residual_out=True)

    def ref_layer(x, ab):
        q, k, v = (ref_proj(x, p, *a) for p, a in zip(qkv, ab[:3], strict=True))
        x1 = x + ref_proj(q * torch.tanh(k) + v, o, *ab[3])
        g, u = ref_proj(x1, mlp[0], *ab[4]), ref_proj(x1, mlp[1], *ab[5])
        return x1 + ref_proj(F.silu(g) * u, mlp[2], *ab[6])

    x = torch.randn(3, 7, 64, device=device, requires_grad=True) / 4
    x = x.detach().requires_grad_()
    dy = torch.randn(3, 7, 64, device=device)
    if nested:  # a checkpoint inside a checkpointed function: its first forward must stay a real one
        y = offloaded_checkpoint(lambda t: layer(offloaded_checkpoint(layer, t)), x)
    else:  # a chain of two checkpointed layers
        y = offloaded_checkpoint(layer, offloaded_checkpoint(layer, x))
    y.backward(dy)
    xr = x.detach().clone().requires_grad_()
    ab = [clones(p.A, p.B) for p in projs]
    yr = ref_layer(ref_layer(xr, ab), ab)
    yr.backward(dy)
    assert_close("y", y, yr)
    assert_close("dx", x.grad, xr.grad)
    for i, (p, (Ar, Br)) in enumerate(zip(projs, ab, strict=True)):
        assert_close(f"dA{i}", p.A.grad, Ar.grad)
        assert_close(f"dB{i}", p.B.grad, Br.grad)


def test_lean_recompute_is_bitwise_the_full_one(device):
    """Lean and full recompute run the same kernels on the same values for everything the backward
    reads, so every gradient is bit-identical (bf16 on the GPU, fp32 on the CPU)."""
    torch.manual_seed(6)
    dt = torch.bfloat16 if device == "cuda" else torch.float32
    projs = [make_proj(64, 64, 3, device) for _ in range(4)]
    projs += [make_proj(64, 96, 4, device), make_proj(64, 96, 4, device), make_proj(96, 64, 4, device)]
    for p in projs:
        p.A, p.B = p.A.detach().to(dt).requires_grad_(), (0.1 * p.B.detach()).to(dt).requires_grad_()
        p.weight = p.weight.to(dt)

    def layer(x):
        q, k, v = lora_qkv(x, *projs[:3])
        x1 = x + lora_linear(q * torch.tanh(k) + v, projs[3])
        return x1 + lora_mlp(x1, *projs[4:], residual_out=True)

    x = torch.randn(2, 9, 64, device=device, dtype=dt)
    grads = []
    for lean in (True, False):
        xi = x.clone().requires_grad_()
        y = offloaded_checkpoint(
            layer, offloaded_checkpoint(layer, xi, lean_recompute=lean), lean_recompute=lean
        )
        y.backward(torch.ones_like(y))
        grads.append([xi.grad] + [t.grad for p in projs for t in (p.A, p.B)])
        for p in projs:
            p.A.grad = p.B.grad = None
    for i, (a, b) in enumerate(zip(*grads, strict=True)):
        assert torch.equal(a, b), f"gradient {i} differs between lean and full recompute"


@pytest.mark.parametrize("n_weights", [2, 3])
def test_stacked_nf4_dequant_is_bitwise_the_separate_ones(n_weights, device):
    """q/k/v (gate/up) NF4 weights dequantized by one launch into the stacked buffer the group matmul
    uses: the same bits as one dequantize_nf4 per weight (on the GPU too, where the kernel is tuned)."""
    from tunesmith.kernels.ops.lora import _Frozen, stacked_weight
    from tunesmith.kernels.ops.nf4 import dequantize_nf4

    torch.manual_seed(7)
    projs = [make_proj(128, n, 4, device, nf4=True) for n in (96, 32, 160)[:n_weights]]
    frozens = [_Frozen(p.weight, None, 1.0) for p in projs]
    wp = stacked_weight(frozens, 128, 12, torch.float32, device)
    assert torch.equal(wp[:, :128], torch.cat([dequantize_nf4(p.weight) for p in projs]))
