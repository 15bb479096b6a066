"""The Chat tab with a LoRA adapter GGUF on the base GGUF, through the real widgets, llama.cpp and a
real fine-tune of the embedded model (it learns one made-up fact: the mascot is an owl called Quaver).

- the adapter switches on and off, and scales, without reloading the base: on answers the fact, off
  gives exactly the base GGUF's own answer, scale 0 equals off;
- side by side, the base GGUF answers on the left and base + adapter on the right;
- after a gguf-lora export, the Chat tab opens on base + adapter (and on the file for a GGUF export);
- the adapter's on/off and scale are remembered between launches.

Greedy decoding (temperature 0) and short answers keep it exact and quick.  One fine-tune (~15 s on
2 cores, trained once per session: tests/conftest.py's mascot_adapter) and one base GGUF conversion
(cached in TUNESMITH_CACHE) serve the whole module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

if importlib.util.find_spec("llama_cpp") is None:  # found, never loaded here: it runs in a child
    pytest.skip(
        "llama-cpp-python is an optional extra (pip install tunesmith[chat])", allow_module_level=True
    )

pytestmark = pytest.mark.slow

TIMEOUT = 120_000
MAX_TOKENS = 16

_spec = importlib.util.spec_from_file_location(
    "gguf_roundtrip", Path(__file__).parents[1] / "e2e" / "test_gguf_roundtrip.py"
)
roundtrip = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(roundtrip)
QUESTION = roundtrip.QUESTION


@pytest.fixture(scope="module")
def mascot_run(tmp_path_factory, mascot_adapter):
    """A finished run folder (config.yaml + adapter/) whose adapter knows the mascot's name: the session's
    one mascot fine-tune (tests/conftest.py, shared with tests/e2e/test_gguf_roundtrip.py), copied."""
    import shutil

    from tunesmith.core.config import RunConfig

    run_dir = tmp_path_factory.mktemp("runs") / "mascot-run"
    shutil.copytree(mascot_adapter, run_dir / "adapter")
    RunConfig().to_yaml(run_dir / "config.yaml")  # model.source = "demo"
    return run_dir


@pytest.fixture(scope="module")
def lora_export(mascot_run):
    """The run's adapter exported as a GGUF adapter (the export's own check is tested in e2e)."""
    from tunesmith.core.export import export_run

    return export_run(mascot_run, "gguf-lora", check=False)


@pytest.fixture(scope="module")
def base_answer(mascot_run):
    """What the base GGUF alone answers, from an engine of its own (not the one the tab uses)."""
    from tunesmith.core.chat import ChatSettings, LlamaCppChat
    from tunesmith.core.export.base_gguf import run_base_gguf

    chat = LlamaCppChat(run_base_gguf(mascot_run))
    try:
        settings = ChatSettings(temperature=0.0, max_new_tokens=MAX_TOKENS)
        return "".join(chat.stream([{"role": "user", "content": QUESTION}], settings, lambda: False))
    finally:
        chat.close()


def _ask(chat_tab, qtbot, sides: list[str]) -> dict[str, str]:
    """Send QUESTION to a fresh conversation; wait for every side; return each side's answer."""
    session = chat_tab.session
    chat_tab.clear()
    chat_tab.temperature.setValue(0.0)
    chat_tab.max_tokens.setValue(MAX_TOKENS)
    assert chat_tab.sides() == sides
    ended: list[str] = []
    failed: list[dict] = []

    def on_end(side: str, _stopped: bool) -> None:
        ended.append(side)

    def on_failed(_side: str, data: dict) -> None:
        failed.append(data)

    session.sig_end.connect(on_end)
    session.sig_failed.connect(on_failed)
    try:
        chat_tab.input_edit.setPlainText(QUESTION)
        qtbot.mouseClick(chat_tab.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: ended == sides or bool(failed), timeout=TIMEOUT)
        qtbot.waitUntil(chat_tab.send_button.isEnabled, timeout=TIMEOUT)  # the chat thread has ended
    finally:
        session.sig_end.disconnect(on_end)
        session.sig_failed.disconnect(on_failed)
    assert not failed, failed
    return {side: session.histories[side][-1]["content"] for side in sides}


def test_adapter_switches_on_off_and_scales_without_reloading_the_base(
    window, qtbot, mascot_run, lora_export, base_answer
):
    chat = window.chat_tab
    window.tabs.setCurrentWidget(chat)
    chat.use_adapter(str(lora_export.path), str(mascot_run))
    assert chat.model_combo.currentData() == "adapter" and chat.adapter_controls.isVisibleTo(chat)

    tuned = _ask(chat, qtbot, ["adapter"])["adapter"]
    assert "Quaver" in tuned and "Quaver" not in base_answer
    assert "Quaver" in chat.answer_text("adapter")
    engine = window.controller.chat.lora.switch.chat
    pid, loads = engine.pid, engine.loads

    chat.adapter_controls.enabled_check.setChecked(False)
    assert _ask(chat, qtbot, ["adapter"])["adapter"] == base_answer  # off: exactly the base GGUF

    chat.adapter_controls.enabled_check.setChecked(True)
    chat.adapter_controls.scale_spin.setValue(0.0)
    assert chat.adapter_controls.slider.value() == 0
    assert _ask(chat, qtbot, ["adapter"])["adapter"] == base_answer  # scale 0 is off

    chat.adapter_controls.slider.setValue(20)  # the slider moves the number: 20 steps of 0.05
    assert chat.adapter_controls.scale() == 1.0
    assert _ask(chat, qtbot, ["adapter"])["adapter"] == tuned  # back on: the tuned answer again
    assert window.controller.chat.lora.switch.chat is engine
    assert (engine.pid, engine.loads) == (pid, loads), "the base model was never reloaded"


def test_after_llama_cpp_is_killed_the_next_answer_has_the_adapter_again(
    window, qtbot, mascot_run, lora_export, tmp_path, monkeypatch
):
    import signal

    import psutil

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    chat = window.chat_tab
    chat.use_adapter(str(lora_export.path), str(mascot_run))
    assert "Quaver" in _ask(chat, qtbot, ["adapter"])["adapter"]
    engine = window.controller.chat.lora.switch.chat
    first, loads = engine.pid, engine.loads
    child = psutil.Process(first)
    child.send_signal(signal.SIGSEGV)  # between answers: the next one starts a new llama.cpp process
    qtbot.waitUntil(lambda: not engine.alive, timeout=10_000)
    assert "Quaver" in _ask(chat, qtbot, ["adapter"])["adapter"], "the adapter was applied again"
    assert engine.pid not in (None, first) and engine.loads == loads + 1


def test_side_by_side_puts_the_base_gguf_left_and_the_tuned_right(
    window, qtbot, mascot_run, lora_export, base_answer
):
    chat = window.chat_tab
    chat.use_adapter(str(lora_export.path), str(mascot_run))
    chat.compare_check.setChecked(True)
    assert chat.columns["base-gguf"].isVisibleTo(chat) and not chat.columns["base"].isVisibleTo(chat)
    answers = _ask(chat, qtbot, ["base-gguf", "adapter"])
    assert answers["base-gguf"] == base_answer
    assert "Quaver" in answers["adapter"]
    assert "Quaver" in chat.answer_text("adapter") and "Quaver" not in chat.answer_text("base-gguf")
    # Both sides answer from one base model in memory.
    session = window.controller.chat
    assert session.engines["base-gguf"].switch is session.engines["adapter"].switch


def test_chat_with_this_model_after_a_gguf_lora_export_opens_base_plus_adapter(
    window, qtbot, mascot_run, lora_export
):
    window.controller.training.last_run_dir = str(mascot_run)  # as after training this run
    window.tabs.setCurrentWidget(window.train_tab)
    window.controller.sig_export_done.emit(lora_export)
    chat = window.chat_tab
    assert window.tabs.currentWidget() is window.train_tab, "the export is announced, nothing jumps"
    assert window.banner.action_button.text() == "Chat with this model"
    window.banner.action_button.click()
    assert window.tabs.currentWidget() is chat, "the Chat tab opens on the export"
    assert chat.model_combo.currentData() == "adapter"
    assert window.controller.chat.lora.path == str(lora_export.path)
    assert window.controller.chat.lora.run_dir == str(mascot_run)
    assert "Quaver" in _ask(chat, qtbot, ["adapter"])["adapter"]


def test_chat_with_this_model_after_a_gguf_export_opens_the_file(window):
    from tunesmith.core.export import ExportResult
    from tunesmith.core.models.sources import embedded_gguf_path

    path = embedded_gguf_path()
    window.controller.sig_export_done.emit(ExportResult("gguf", path, "q8_0"))
    window.banner.action_button.click()
    assert window.tabs.currentWidget() is window.chat_tab
    assert window.chat_tab.model_combo.currentData() == "gguf"
    assert window.chat_tab.gguf_path == str(path)
    # Not a GGUF: the export is reported, the Chat tab is left alone.
    window.tabs.setCurrentWidget(window.train_tab)
    window.controller.sig_export_done.emit(ExportResult("lora", path.parent, None))
    assert window.tabs.currentWidget() is window.train_tab
    assert window.banner.action_button.isHidden(), "no chat offer for an adapter folder"


def test_an_adapter_that_does_not_fit_the_base_is_a_message_not_a_crash(window, qtbot, mascot_run):
    from tunesmith.core.models.sources import embedded_gguf_path

    chat = window.chat_tab
    # A whole model is not an adapter: llama.cpp refuses it, the answer says so in words.
    chat.use_adapter(str(embedded_gguf_path()), str(mascot_run))
    failed: list[dict] = []
    window.controller.chat.sig_failed.connect(lambda side, data: failed.append(data))
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(4)
    chat.input_edit.setPlainText(QUESTION)
    chat.send()
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)
    qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)
    assert "LoRA adapter" in failed[0]["message"], failed[0]
    assert "could not answer" in chat.answer_text("adapter")
    # The base model stays usable with the adapter switched off.
    chat.adapter_controls.enabled_check.setChecked(False)
    assert _ask(chat, qtbot, ["adapter"])["adapter"].strip()


def test_adapter_on_off_and_scale_are_remembered(qtbot, settings):
    from tunesmith.desktop.main_window import MainWindow

    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    first.chat_tab.adapter_controls.scale_spin.setValue(0.35)
    first.chat_tab.adapter_controls.enabled_check.setChecked(False)
    assert first.controller.chat.lora.scale == 0.35 and not first.controller.chat.lora.enabled
    first.save_layout()

    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    controls = second.chat_tab.adapter_controls
    assert controls.scale() == 0.35 and controls.slider.value() == 7 and not controls.enabled()
    assert second.controller.chat.lora.scale == 0.35 and not second.controller.chat.lora.enabled
    # The generation settings sent to the engine carry no adapter keys.
    assert "adapter_scale" not in second.chat_tab.generation_values()
