"""Assert helper for the kernel tests: relative error of a result against its reference, with the
worst mismatches printed when it fails."""

import torch


def assert_close(name: str, got: torch.Tensor, ref: torch.Tensor, rtol: float = 1e-5) -> None:
    assert got.shape == ref.shape, f"{name}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    g, r = got.detach().double(), ref.detach().double()
    assert torch.isfinite(g).all(), f"{name}: non-finite values"
    err = (g - r).norm() / r.norm().clamp_min(1e-30)
    if err > rtol:
        diff = (g - r).abs().flatten()
        worst = diff.topk(min(5, diff.numel())).indices
        rows = [f"  [{i}] got {g.flatten()[i]:.6g} ref {r.flatten()[i]:.6g}" for i in worst.tolist()]
        raise AssertionError(f"{name}: relative error {err:.3g} > {rtol}\n" + "\n".join(rows))
