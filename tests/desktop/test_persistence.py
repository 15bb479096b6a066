"""Settings and layout come back between launches: the last model and dataset, the training settings,
the chat knobs and the open tab.  Windows are built but not shown, so no engine work starts."""

from __future__ import annotations

from tunesmith.desktop.logic.presets import matching_preset
from tunesmith.desktop.main_window import FIRST_PRESET, MainWindow
from tunesmith.desktop.persistence import make_settings


def test_first_launch_uses_the_quick_test_preset_on_the_demo_model(qtbot):
    window = MainWindow(settings=make_settings())
    qtbot.addWidget(window)
    config = window.controller.config
    assert config.model.source == "demo" and config.data.path == "sample"
    assert matching_preset(config) == FIRST_PRESET
    assert window.train_tab.preset_combo.currentText() == FIRST_PRESET
    assert window.model_panel.kind_combo.currentData() == "demo"


def test_settings_and_layout_return_after_a_restart(qtbot, tmp_path):
    first = MainWindow(settings=make_settings())
    qtbot.addWidget(first)
    config = first.controller.config
    config.data.path = str(tmp_path / "mine.jsonl")
    config.model.source = "HuggingFaceTB/SmolLM2-135M-Instruct"
    first.train_tab.form.editors["lora.r"].setValue(24)  # through the widget, as a user would
    first.chat_tab.temperature.setValue(0.2)
    first.tabs.setCurrentIndex(2)
    first.save_layout()

    second = MainWindow(settings=make_settings())
    qtbot.addWidget(second)
    again = second.controller.config
    assert again.data.path == str(tmp_path / "mine.jsonl")
    assert again.model.source == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert again.lora.r == 24 and second.train_tab.preset_combo.currentText() == "Custom"
    assert second.model_panel.kind_combo.currentData() == "hub"
    assert second.model_panel.location_edit.text() == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert second.chat_tab.temperature.value() == 0.2
    assert second.tabs.currentIndex() == 2


def test_main_actions_have_keyboard_shortcuts(qtbot):
    window = MainWindow(settings=make_settings())
    qtbot.addWidget(window)
    shortcuts = {name: action.shortcut().toString() for name, action in window.actions.items()}
    assert shortcuts["start"] == "Ctrl+Return" and shortcuts["stop"] == "Ctrl+."
    assert shortcuts["resume"] == "Ctrl+R" and shortcuts["export"] == "Ctrl+E"
    assert shortcuts["open"] == "Ctrl+O" and shortcuts["tab2"] == "Ctrl+3"
    window.actions["tab2"].trigger()
    assert window.tabs.currentWidget() is window.chat_tab
