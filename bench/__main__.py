"""`python -m bench SUBCOMMAND [options]`: one entry for the benchmarks (see bench/__init__.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SUBCOMMANDS = {
    "qlora": (
        "bench.bench_qlora",
        "QLoRA training steps: stock recipe, Tunesmith, Unsloth (GPU; --smoke on CPU)",
    ),
    "rl": ("bench.bench_rl", "GRPO and DPO steps through TRL's trainers (GPU)"),
    "kernels": ("bench.bench_kernels", "each Triton op against its PyTorch reference (GPU)"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SUBCOMMANDS:
        lines = [f"  {name:<8} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
        print("usage: python -m bench {" + ",".join(SUBCOMMANDS) + "} [options]\n" + "\n".join(lines))
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    # `python -m` put the repository root first on sys.path, where the folder `kernels/` would answer to
    # `import kernels` (PyPI's package of that name, which transformers imports); Tunesmith itself is
    # imported as tunesmith.* from the installed project.
    root = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    sys.argv = [f"python -m bench {argv[0]}", *argv[1:]]
    result = module.main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
