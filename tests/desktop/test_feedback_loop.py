"""From the Chat tab's verdicts to a DPO run that continues the judged run's adapter (issue 17, point 2),
through the real widgets, the real demo model and the real engine.

- in the side-by-side view (base left, a past run right) the user marks the better answer, then edits
  an answer into the one wanted; each verdict is one pair in RUN_DIR/feedback/preferences.jsonl, which
  the dataset loader reads as preference data (the conversation, system prompt first, as the prompt);
  the tab counts the pairs;
- "Train on my feedback" opens the Train tab ready to start DPO on that file from the run's adapter,
  on the run's model, with the same settings `tunesmith train --method dpo --data ... --init-adapter
  RUN_DIR` gives;
- that DPO run starts from the earlier adapter.  Its first DPO loss cannot show it: the reference is the
  model the run starts from (TRL copies the adapter into a frozen "ref" adapter), so the first loss is
  ln 2 from the earlier adapter and from a fresh one alike.  What shows it: at step 0 the trainable LoRA
  weights *are* the adapter file's (a fresh adapter's B matrices are zero, the file's are not), and the
  model's loss on a fixed text equals the earlier adapter's (as the Chat tab loaded that run on its own:
  merged into the base) and differs from the base's (which is a fresh adapter's);
- an adapter made for another model is refused before training, in words naming both models.

One short SFT run of the embedded model (4 steps of one row, lr 3e-3, LoRA r 4: the session's `trained_run`
from conftest.py, shared with test_chat_past_runs) serves the module; greedy answers of a few tokens keep the
chat exact and quick.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from .conftest import copy_of_run

TIMEOUT = 240_000
MAX_TOKENS = 8
PROBE = "Who are you? I am Quill, the pirate-poet of the seven seas."


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory, trained_run):
    """(runs folder, run folder): a finished SFT run whose adapter moved away from the base (a copy of the
    session's `trained_run`, shared with test_chat_past_runs; this module writes feedback and runs into it)."""
    return copy_of_run(trained_run, tmp_path_factory.mktemp("judged"))


def _ask(chat, qtbot, text: str, sides: list[str]) -> dict[str, str]:
    """Type `text`, click Send, wait for every side and the chat thread; each side's answer."""
    ended: list[str] = []
    failed: list[dict] = []
    session = chat.session
    on_end = lambda side, _stopped: ended.append(side)  # noqa: E731
    on_failed = lambda _side, data: failed.append(data)  # noqa: E731
    session.sig_end.connect(on_end)
    session.sig_failed.connect(on_failed)
    try:
        chat.input_edit.setPlainText(text)
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: ended == sides or bool(failed), timeout=TIMEOUT)
        qtbot.waitUntil(chat.send_button.isEnabled, timeout=TIMEOUT)
    finally:
        session.sig_end.disconnect(on_end)
        session.sig_failed.disconnect(on_failed)
    assert not failed, failed
    return {side: session.histories[side][-1]["content"] for side in sides}


def test_verdicts_become_pairs_and_train_on_my_feedback_continues_the_adapter(window, qtbot, judged_run):
    from tunesmith.core.cli import build_parser
    from tunesmith.core.cli_settings import config_from_args
    from tunesmith.core.data import load_dataset_file
    from tunesmith.core.feedback import preferences_path

    runs, run_dir = judged_run
    pairs = preferences_path(run_dir)
    window.controller.set_output_dir(str(runs))
    chat, bar = window.chat_tab, window.chat_tab.feedback
    window.tabs.setCurrentWidget(chat)
    assert chat.use_run(str(run_dir))
    chat.compare_check.setChecked(True)
    chat.temperature.setValue(0.0)
    chat.max_tokens.setValue(MAX_TOKENS)
    chat.system_edit.setText("Answer briefly.")
    assert chat.sides() == ["base", "run"]
    assert bar.count_label.text() == "0 preference pairs saved for this run"
    assert not bar.left_button.isEnabled() and not bar.train_button.isEnabled()

    first = _ask(chat, qtbot, "Who are you?", ["base", "run"])
    assert first["base"] != first["run"], "the run's adapter changed the answer"
    assert bar.left_button.isEnabled() and bar.right_button.isEnabled()
    qtbot.mouseClick(bar.left_button, Qt.MouseButton.LeftButton)
    assert bar.count_label.text() == "1 preference pair saved for this run"
    assert not bar.left_button.isEnabled() and not bar.edit_button.isEnabled(), "one verdict per answer"

    second = _ask(chat, qtbot, "Where do you live?", ["base", "run"])
    qtbot.mouseClick(bar.edit_button, Qt.MouseButton.LeftButton)
    assert bar.editor.isVisible() and bar.editor.toPlainText() == second["run"]
    bar.editor.setPlainText("On my ship, the Quaver, matey!")
    qtbot.mouseClick(bar.save_edit_button, Qt.MouseButton.LeftButton)
    assert not bar.edit_dialog.isVisible()
    assert bar.count_label.text() == "2 preference pairs saved for this run"

    dataset = load_dataset_file(pairs)
    assert dataset.format == "preference" and dataset.usable_rows == 2 and not dataset.problems
    marked, edited = (record.example for record in dataset.records)
    system, question = (
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Who are you?"},
    )
    assert marked["prompt"] == [system, question]
    assert (
        marked["chosen"][0]["content"] == first["base"] and marked["rejected"][0]["content"] == first["run"]
    )
    # The second pair's prompt is the conversation as the tuned side had it, its own first answer included.
    assert edited["prompt"] == [
        system,
        question,
        {"role": "assistant", "content": first["run"]},
        {"role": "user", "content": "Where do you live?"},
    ]
    assert edited["chosen"][0]["content"] == "On my ship, the Quaver, matey!"
    assert edited["rejected"][0]["content"] == second["run"]

    # "Train on my feedback": the Train tab, ready to start DPO on the pairs from the run's adapter.
    window.controller.config.model.source = (
        "HuggingFaceTB/SmolLM2-360M"  # the form had another model: the run's wins
    )
    bar.method_combo.setCurrentIndex(bar.method_combo.findData("orpo"))  # ORPO can be chosen instead
    qtbot.mouseClick(bar.train_button, Qt.MouseButton.LeftButton)
    train = window.train_tab
    assert window.controller.config.train.method == "orpo" and train.method_combo.currentData() == "orpo"
    window.tabs.setCurrentWidget(chat)
    bar.method_combo.setCurrentIndex(bar.method_combo.findData("dpo"))
    qtbot.mouseClick(bar.train_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is train
    config = window.controller.config
    assert (config.train.method, config.data.path) == ("dpo", str(pairs))
    assert config.lora.init_adapter == str(run_dir) and config.model.source == "demo"
    assert train.method_combo.currentData() == "dpo"
    assert window.findChild(QLineEdit, "lora.init_adapter").text() == str(run_dir)
    qtbot.waitUntil(
        lambda: getattr(window.controller.dataset, "format", None) == "preference", timeout=TIMEOUT
    )
    assert train.start_button.isEnabled(), train.start_button.toolTip()
    # The command line gives the same run.
    args = build_parser().parse_args(
        ["train", "--method", "dpo", "--data", str(pairs), "--init-adapter", str(run_dir)]
    )
    typed = config_from_args(args)
    assert (typed.train.method, typed.data.path, typed.lora.init_adapter) == ("dpo", str(pairs), str(run_dir))

    # What the earlier adapter and the base compute, from the chat's own engines: the app loaded the run
    # (its adapter merged into the base) and the base apart from the DPO run's model.
    engines = window.controller.chat.engines
    earlier_loss = _text_loss(engines["run"].model, engines["run"].tokenizer)
    base_loss = _text_loss(engines["base"].model, engines["base"].tokenizer)
    _dpo_run_starts_from_the_adapter(copy.deepcopy(config), run_dir, earlier_loss, base_loss)


def _dpo_run_starts_from_the_adapter(config, run_dir: Path, earlier_loss: float, base_loss: float) -> None:
    """One DPO step from the config the app made; what the model is at step 0, read by a callback."""
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from tunesmith.core.events import Finished, StepMetrics
    from tunesmith.core.training.engine import TrainingRun

    seen: dict = {}

    class AtStepZero(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
            seen["weights"] = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
            seen["trainable"] = {n for n, p in model.named_parameters() if p.requires_grad}
            seen["loss"] = _text_loss(model, processing_class)

    config.train.max_steps, config.train.batch_size, config.data.max_length = 1, 2, 128
    events: list = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        finished = TrainingRun(config, events.append, extra_callbacks=[AtStepZero()]).run()
    finally:
        torch.set_num_threads(threads)
    assert isinstance(finished, Finished), finished

    saved = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    assert any(name.endswith("lora_B.weight") and tensor.abs().max() > 0 for name, tensor in saved.items()), (
        "the earlier adapter's B matrices are not zero (a fresh adapter's are)"
    )
    for name, tensor in saved.items():
        trainable = name.replace(".weight", ".default.weight")
        assert torch.equal(seen["weights"][trainable], tensor), f"step 0's {trainable} is not the file's"
        assert trainable in seen["trainable"], f"{trainable} is not trained"
        # DPO's reference: the same adapter, frozen (TRL's "ref" copy), not the bare base.
        reference = name.replace(".weight", ".ref.weight")
        assert torch.equal(seen["weights"][reference], tensor) and reference not in seen["trainable"]
    # (merged into the base, the earlier adapter computes the same loss to float rounding)
    assert seen["loss"] == pytest.approx(earlier_loss, abs=1e-4), (
        "step 0 computes what the earlier adapter did"
    )
    assert abs(earlier_loss - base_loss) > 1e-3, "a fresh adapter (= the base) would compute another loss"

    first = next(event for event in events if isinstance(event, StepMetrics))
    assert first.loss == pytest.approx(math.log(2), abs=1e-3), "policy = reference at the first step"
    recorded = yaml.safe_load((Path(finished.run_dir) / "config.yaml").read_text(encoding="utf-8"))
    assert recorded["lora"]["r"] == 4 and recorded["lora"]["alpha"] == 8, "the adapter's shape is the run's"
    assert recorded["lora"]["init_adapter"] == str(run_dir)


def _text_loss(model, tokenizer) -> float:
    """The model's mean token loss on a fixed text (dropout is 0: train and eval modes agree)."""
    import torch

    batch = tokenizer(PROBE, return_tensors="pt")
    with torch.no_grad():
        return float(model(**batch, labels=batch["input_ids"]).loss)


def test_an_adapter_made_for_another_model_is_refused_in_words(judged_run, tmp_path, capsys):
    import shutil

    from safetensors.torch import load_file, save_file

    from tunesmith.core.cli import main
    from tunesmith.core.config import RunConfig
    from tunesmith.core.data import sample_dataset_path

    _runs, run_dir = judged_run
    pairs = str(sample_dataset_path().with_name("preferences.jsonl"))
    train = [
        "train",
        "--method",
        "dpo",
        "--data",
        pairs,
        "--output",
        str(tmp_path / "out"),
        "--max-steps",
        "1",
    ]

    # A run trained on another model: refused before anything loads, naming both models.
    other_run = tmp_path / "llama-run"
    shutil.copytree(run_dir / "adapter", other_run / "adapter")
    config = RunConfig()
    config.model.source = "/models/Llama-3-8B"
    config.to_yaml(other_run / "config.yaml")
    assert main([*train, "--init-adapter", str(other_run)]) == 1
    error = capsys.readouterr().err
    assert "--init-adapter" in error and "/models/Llama-3-8B" in error and "demo" in error, error
    assert not (tmp_path / "out").exists(), "no run folder for a refused run"

    # An adapter folder whose layers have another width: refused once the model's layers are known.
    narrow = tmp_path / "narrow-adapter"
    shutil.copytree(run_dir / "adapter", narrow)
    tensors = load_file(str(narrow / "adapter_model.safetensors"))
    key = next(name for name in tensors if name.endswith("layers.0.self_attn.q_proj.lora_A.weight"))
    tensors[key] = tensors[key][:, :100].contiguous()
    save_file(tensors, str(narrow / "adapter_model.safetensors"))
    assert main([*train, "--init-adapter", str(narrow)]) == 1
    error = capsys.readouterr().err
    assert "model.layers.0.self_attn.q_proj takes 100 inputs, this model's takes 576" in error, error
    assert str(narrow) in error and "--model" in error and "--init-adapter" in error, error

    # No adapter at all.
    assert main([*train, "--init-adapter", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: no such folder" in capsys.readouterr().err
