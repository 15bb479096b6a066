"""The settings of a run that trains on the Chat tab's feedback: "Train on my feedback".

A preference run (DPO by default, ORPO when chosen) on RUN_DIR/feedback/preferences.jsonl that
continues RUN_DIR's adapter, on the model RUN_DIR was trained on; every other setting stays as the
form has it.  The same run from the command line is
`tunesmith train --method dpo --data RUN_DIR/feedback/preferences.jsonl --init-adapter RUN_DIR`.
Pure data, no Qt.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from tunesmith.core.config import RunConfig
from tunesmith.core.feedback import preferences_path

FEEDBACK_METHODS = {"dpo": "DPO", "orpo": "ORPO"}


def feedback_config(current: RunConfig, run_dir: str | Path, method: str = "dpo") -> RunConfig:
    """`current` turned into the feedback run of `run_dir` (a copy: `current` is left as it is)."""
    if method not in FEEDBACK_METHODS:
        raise ValueError(f"feedback trains with {' or '.join(FEEDBACK_METHODS)}, not {method}")
    config = copy.deepcopy(current)
    config.train.method = method
    config.data.path = str(preferences_path(run_dir))
    config.data.format, config.data.columns = "auto", ""
    config.lora.enabled, config.lora.init_adapter = True, str(run_dir)
    config.model.source = _trained_on(Path(run_dir)) or config.model.source
    return config


def _trained_on(run_dir: Path) -> str | None:
    """The model.source in the run's config.yaml (None when it cannot be read: the run then checks)."""
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        source = (data.get("model") or {}).get("source")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return str(source) if source else None
