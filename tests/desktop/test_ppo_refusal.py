"""PPO in the app's method list is refused in words, and Start does not start a run (issue 15, point 5)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


def test_choosing_ppo_says_why_it_is_not_offered_and_start_refuses(window, qtbot, tmp_path):
    train = window.train_tab
    combo = train.method_combo
    row = combo.findData("ppo")
    assert row >= 0 and "PPO" in combo.itemText(row)
    assert "removed PPO in September 2026" in combo.itemData(row, Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(row)
    assert window.controller.config.train.method == "ppo"
    hint = train.method_hint.text()
    assert not train.method_hint.isHidden()
    assert hint.startswith("the 'Method' setting: PPO is not offered.")
    assert "huggingface/trl PR #7020" in hint and "'Reward model (GRPO)'" in hint
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert not window.controller.training.is_running()
    assert "PPO is not offered" in window.banner.text()
    assert train.status_label.text().startswith("Not started")
    assert not (tmp_path / "runs").exists()  # no run folder: nothing was loaded
    combo.setCurrentIndex(combo.findData("grpo"))  # the way out it names: GRPO shows the reward model field
    assert train.form.shows("train.reward_model") and "PPO" not in train.method_hint.text()


def test_longest_that_fits_on_a_gpu_says_ppo_is_not_offered_instead_of_failing():
    from tunesmith.core.config import RunConfig
    from tunesmith.core.context_plan import longest_context
    from tunesmith.core.hardware import HardwareInfo
    from tunesmith.core.models.model_shape import shape_of
    from tunesmith.desktop.logic.longest_context import without_plan

    card = HardwareInfo(
        "cuda", "NVIDIA GeForce RTX 3070", (8, 6), 8.0, 7.6, 16.0, 8, "2.11", "13.0", "3.6", "0.45", "3.11"
    )
    config = RunConfig()
    config.train.method = "ppo"
    offer = without_plan(config, card)
    assert offer is not None and offer.tokens is None and "PPO is not offered" in offer.text
    config.train.method = "sft"  # the plan itself would refuse "ppo"; SFT on the same card gets a length
    assert without_plan(config, card) is None
    with pytest.raises(ValueError, match="not 'ppo'"):  # what the window would have shown without it
        longest_context(shape_of("demo"), "ppo", 7.6, 16.0, precision="4bit", lora_r=16)
