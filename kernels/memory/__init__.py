"""Where tensors live during training: checkpointed layer inputs and the attention stash in pinned host
memory (offload), the page-locked blocks of their exact sizes that hold them (pinned_pool), the GPU's view
of pinned host tables (host_memory), and the budget all draw on (host_budget).  Knows torch only; the
arithmetic is in kernels/DESIGN.md."""
