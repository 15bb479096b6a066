"""Synchronous tests of the app's logic: presets, machine limits, formatting, histogram, persistence,
error wording.  No threads, no engine runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

from tunesmith.core.config import RunConfig
from tunesmith.core.events import Finished, StepMetrics
from tunesmith.desktop import persistence
from tunesmith.desktop.logic.dataset_preview import DatasetPreview, histogram
from tunesmith.desktop.logic.engines import ChatNotReady, describe_error
from tunesmith.desktop.logic.formatting import finished_line, format_duration, format_rate, progress_line
from tunesmith.desktop.logic.presets import PRESETS, apply_preset, machine_limits, matching_preset
from tunesmith.desktop.logic.settings_spec import SETTINGS, get_value, set_value


def test_the_form_shows_every_public_setting_not_edited_elsewhere():
    from tunesmith.core.config import run_settings
    from tunesmith.desktop.logic.settings_spec import ELSEWHERE

    public = {spec.path for spec in run_settings() if not spec.internal}
    assert set(ELSEWHERE) <= public
    assert {spec.path for spec in SETTINGS} == public - set(ELSEWHERE)
    assert {"train.lr_scheduler", "train.weight_decay", "data.packing", "lora.target_modules"} <= public


def test_presets_apply_and_are_recognised():
    config = RunConfig()
    for name, values in PRESETS.items():
        apply_preset(config, name)
        assert matching_preset(config) == name
        assert all(get_value(config, path) == value for path, value in values.items())
        config.validate()
    set_value(config, "lora.r", 7)
    assert matching_preset(config) is None


def test_machine_limits_disable_gpu_only_choices_on_cpu():
    cpu = SimpleNamespace(device="cpu", supports_4bit=False, supports_bf16=True)
    limits = machine_limits(cpu)
    assert "model.precision=4bit" in limits and "train.optimizer=adamw_8bit" in limits
    assert "model.precision=bf16" not in limits
    gpu = SimpleNamespace(device="cuda", supports_4bit=True, supports_bf16=True)
    assert machine_limits(gpu) == {}
    assert machine_limits(None) == {}


def test_formatting():
    assert format_duration(42) == "0:42"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(None) == "—" and format_duration(math.nan) == "—"
    assert format_rate(12345) == "12.3k tokens/s"
    step = StepMetrics(
        step=3, total_steps=10, epoch=0.3, loss=1.23456, learning_rate=1e-4, grad_norm=None,
        tokens_per_second=850, peak_allocated_gb=0.0, peak_reserved_gb=0.0, memory_total_gb=0.0,
        eta_seconds=42,
    )  # fmt: skip
    assert progress_line(step) == "Step 3 / 10 · loss 1.235 · 850 tokens/s · ETA 0:42"
    finished = Finished(run_dir="r", adapter_dir="r/adapter", step=2, final_loss=1.0, cancelled=True)
    assert "Resume" in finished_line(finished)
    assert "Chat tab" in finished_line(
        Finished(run_dir="r", adapter_dir="r/adapter", step=5, final_loss=None)
    )


def test_histogram_bins_every_length():
    edges, counts = histogram([10, 20, 20, 30, 100], bins=9)
    assert len(edges) == 10 and sum(counts) == 5
    assert edges[0] == 10 and edges[-1] == 100
    assert histogram([])[1] == [0]
    assert histogram([5, 5])[1] == [2]


def test_config_and_values_persist(settings):
    config = RunConfig()
    config.model.source = "/models/my-model"
    config.data.path = "/data/mine.jsonl"
    config.train.learning_rate = 5e-5
    persistence.save_config(settings, config)
    persistence.save_values(settings, "chat/settings", {"temperature": 0.3})
    settings.sync()
    again = persistence.make_settings()
    restored = persistence.load_config(again)
    assert restored.to_dict() == config.to_dict()
    assert persistence.load_values(again, "chat/settings") == {"temperature": 0.3}


def test_a_stale_remembered_config_is_ignored(settings):
    settings.setValue("run/config", '{"model": {"no_such_setting": 1}}')
    assert persistence.load_config(settings) is None


def test_errors_are_described_in_words():
    message, hint = describe_error(FileNotFoundError(2, "No such file", "/x/data.jsonl"))
    assert message == "File not found: data.jsonl" and hint
    assert describe_error(RuntimeError("CUDA out of memory"))[1].startswith("Lower the batch size")
    assert describe_error(ChatNotReady("Choose a GGUF file first."))[1]


def test_dataset_summary_line():
    from tunesmith.desktop.tabs.dataset_tab import DatasetTab

    preview = DatasetPreview(
        "f.jsonl",
        "alpaca",
        10,
        8,
        [(3, "output", "missing")],
        lengths=[5, 9],
        stats={"median": 7.0, "max": 9},
        measured_rows=2,
    )
    text = DatasetTab.summary_text(preview, over_cut=1)
    assert "alpaca" in text and "<b>8</b> of 10" in text and "1</b> problem" in text and "median 7" in text


def test_preference_and_prompt_rows_are_previewed_as_conversations():
    from tunesmith.desktop.logic.dataset_preview import previewable

    prompt = [{"role": "user", "content": "Hi?"}]
    chosen = [{"role": "assistant", "content": "Hello!"}]
    rejected = [{"role": "assistant", "content": "Go away."}]
    assert previewable({"prompt": prompt, "chosen": chosen, "rejected": rejected}) == {
        "messages": prompt + chosen
    }
    assert previewable({"prompt": prompt, "answer": "42"}) == {"messages": prompt}
    conversation = {"messages": prompt + chosen}
    assert previewable(conversation) is conversation


def test_engine_messages_name_settings_as_the_form_labels_them():
    from tunesmith.core.config import ConfigError, RunConfig, worded
    from tunesmith.desktop.workers.training import form_name

    assert form_name("train.learning_rate") == "the 'Learning rate' setting"
    assert form_name("train.checkpoint_minutes") == "the 'Checkpoint every (minutes)' setting"
    assert form_name("no.such.setting") == "no.such.setting"
    config = RunConfig()
    config.train.learning_rate = -1.0
    try:
        config.validate()
    except ConfigError as exc:
        assert "the 'Learning rate' setting" in worded(exc, form_name)
    else:
        raise AssertionError("a negative learning rate passed validation")
