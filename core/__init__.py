"""core package: the engine (no Qt).

transformers 5.25 replaces layers with "hub kernels" by default when it loads a model: code fetched from
the model hub at run time, through the `kernels` package it now depends on, and an error ("Kernels are
not available") where that package's metadata is absent (the PyInstaller bundle).  Tunesmith runs
offline and safe by default and has its own kernels, so it turns that off for its process before any
model loads, unless the user set USE_HUB_KERNELS themselves.
"""

import os

os.environ.setdefault("USE_HUB_KERNELS", "0")
