"""PPO in the app's method list is refused in words, and Start does not start a run (issue 15, point 5)."""

from __future__ import annotations

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
