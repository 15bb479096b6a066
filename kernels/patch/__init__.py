"""kernels/patch package."""
