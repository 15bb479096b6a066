"""Export a finished run: LoRA adapter, merged 16-bit folder, GGUF (+ Ollama Modelfile), adapter GGUF.

Entry point: `export_run` (see `api.py`); the CLI sub-commands live in `cli_commands.py`.
"""

from .api import export_run
from .result import EXPORT_FORMATS, GGUF_QUANTS, CheckResult, ExportError, ExportResult

__all__ = ["EXPORT_FORMATS", "GGUF_QUANTS", "CheckResult", "ExportError", "ExportResult", "export_run"]
