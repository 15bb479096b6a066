"""Tunesmith's benchmarks, run from the repository root: `python -m bench qlora|rl|kernels [...]`.

Each subcommand is one module here (bench_qlora, bench_rl, bench_kernels); results and the commands
that produced them are recorded in BENCHMARKS.md.  Not installed with the package.
"""
