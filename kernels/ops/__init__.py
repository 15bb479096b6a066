"""Exact training ops: each module holds Triton kernels, their launchers (`<op>_forward`, `<op>_backward`)
and a thin autograd Function, and knows torch and triton only (never transformers or peft)."""
