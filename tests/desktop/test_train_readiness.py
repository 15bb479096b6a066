"""Before Start, the Train tab says how long the run will be, and refuses a dataset that can't be used.

Driven through the real Dataset tab and controller: a file that fails to load disables Start with the
reason (issue 21.4: no run is started to fail on it); the sample makes Start possible again; the
estimate line follows the dataset and the settings (issue 21.10).
"""

from __future__ import annotations

from PySide6.QtCore import Qt

TIMEOUT = 120_000


def test_start_waits_for_a_usable_dataset_and_the_estimate_follows_the_settings(window, qtbot, tmp_path):
    controller, train = window.controller, window.train_tab
    qtbot.waitUntil(lambda: controller.dataset is not None, timeout=TIMEOUT)  # the sample
    assert train.start_button.isEnabled()
    assert_menu_follows_buttons(window)
    assert train.estimate_label.text().startswith("About 4 steps (")  # the small config's max steps

    controller.config.train.max_steps = -1
    controller.config.train.epochs = 2.0
    controller.config.train.batch_size = 4
    train.load_from_config()
    rows = controller.dataset.usable_rows
    assert train.estimate_label.text().startswith(
        f"About {2 * -(-rows // 4)} steps (2 passes over {rows} rows"
    )

    broken = tmp_path / "broken.jsonl"
    broken.write_text("")
    with qtbot.waitSignal(controller.sig_dataset_state, timeout=TIMEOUT):
        window.dataset_tab.open_path(str(broken))
    assert not train.start_button.isEnabled()
    assert_menu_follows_buttons(window)
    assert train.start_button.toolTip().startswith("Fix the dataset first:")
    assert train.status_label.text().startswith("Fix the dataset first")
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert not controller.training.is_running()

    with qtbot.waitSignal(controller.sig_dataset_state, timeout=TIMEOUT):
        window.dataset_tab.open_path("sample")
    assert train.start_button.isEnabled() and train.status_label.text().startswith("Ready")
    assert_menu_follows_buttons(window)


def assert_menu_follows_buttons(window) -> None:
    """Run ▸ Start / Stop / Resume / Open run folder can be chosen exactly when their buttons can."""
    window.tabs.setCurrentWidget(window.train_tab)
    train = window.train_tab
    pairs = {"start": train.start_button, "stop": train.stop_button, "resume": train.resume_button}
    pairs["folder"] = train.folder_button
    assert {name: window.actions[name].isEnabled() for name in pairs} == {
        name: button.isEnabled() for name, button in pairs.items()
    }
