"""Method metrics in the Train tab, method settings, and preference / prompt-only previews (issue 6).

One real DPO run (3 tiny steps and one evaluation on the embedded model, ~30 s on CPU) goes through the whole app path —
engine, worker thread, session, Train tab — and the method plots must hold exactly the numbers the
engine wrote to the run's metrics.jsonl.  GRPO is checked on a metrics.jsonl recorded from a real
3-step run (tests/desktop/data/grpo_run: `tunesmith train --method grpo --reward length:3
--reward 'format:^[A-Z]' --kl-weight 0.05 --num-generations 2 --max-completion-length 8`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tunesmith.core.data import sample_dataset_path
from tunesmith.core.events import EvalMetrics, StepMetrics
from tunesmith.desktop.logic.method_metrics import eval_points, method_points
from tunesmith.desktop.logic.run_history import read_run

GRPO_RUN = Path(__file__).parent / "data" / "grpo_run"
TIMEOUT = 240_000


def logged(run_dir: str | Path, kind: str) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if json.loads(line)["event"] == kind]


def step_event(step: int) -> StepMetrics:
    return StepMetrics(
        step=step, total_steps=4, epoch=step / 4, loss=1.0, learning_rate=1e-4, grad_norm=None,
        tokens_per_second=100.0, peak_allocated_gb=1.0, peak_reserved_gb=1.0, memory_total_gb=8.0,
        eta_seconds=1.0,
    )  # fmt: skip


def curve(plot, name: str) -> tuple[list[float], list[float]]:
    return plot.values(name)


@pytest.mark.slow
def test_a_real_dpo_run_plots_chosen_rejected_margin_and_accuracy(window, qtbot, tmp_path):
    controller, train = window.controller, window.train_tab
    config = controller.config
    config.train.method = "dpo"
    config.data.path = str(sample_dataset_path("preferences.jsonl"))
    config.data.max_length = 64
    config.train.max_steps = 3
    config.train.batch_size = 2
    config.train.learning_rate = 5e-4
    config.train.lr_scheduler = "constant"
    config.data.eval_ratio = 0.25  # two of the eight pairs, measured once, at step 3
    config.train.eval_steps = 3
    train.load_from_config()
    assert not train.plots.method.isVisibleTo(train)

    with qtbot.waitSignal(controller.training.sig_finished, timeout=TIMEOUT) as finished:
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert not finished.args[0].cancelled
    qtbot.waitUntil(lambda: not controller.training.is_running(), timeout=TIMEOUT)

    method = train.plots.method
    assert method.isVisibleTo(train) and set(method.panels) == {"preference", "accuracy"}
    assert method.curve_names("preference")[:3] == ["chosen", "rejected", "margin"]
    steps = logged(finished.args[0].run_dir, "step")  # what the engine wrote, event by event
    assert [s["step"] for s in steps] == [1, 2, 3]
    rewards = method.panels["preference"]
    for name, key in (
        ("chosen", "rewards/chosen"),
        ("rejected", "rewards/rejected"),
        ("margin", "rewards/margins"),
    ):
        assert curve(rewards, name) == ([1.0, 2.0, 3.0], [pytest.approx(s["extra"][key]) for s in steps])
    accuracy = curve(method.panels["accuracy"], "accuracy")[1]
    assert accuracy == [pytest.approx(s["extra"]["rewards/accuracies"]) for s in steps]
    margins = curve(rewards, "margin")[1]
    assert margins[0] == pytest.approx(0.0, abs=1e-6) and margins[-1] > 0  # the adapter starts as a no-op
    assert train.plots.loss.values("train")[1] == [pytest.approx(s["loss"]) for s in steps]
    qtbot.waitUntil(lambda: rewards.drawn_points("margin") == 3, timeout=5_000)  # the timer draws them
    (evaluation,) = logged(finished.args[0].run_dir, "eval")
    assert curve(rewards, "margin (eval)") == (
        [3.0],
        [pytest.approx(evaluation["extra"]["eval_rewards/margins"])],
    )
    accuracy_eval = curve(method.panels["accuracy"], "accuracy (eval)")[1]
    assert accuracy_eval == [pytest.approx(evaluation["extra"]["eval_rewards/accuracies"])]

    # Reopening the run folder redraws the very same points.
    shown = train.plots.method.panels
    before = {
        name: curve(shown["preference"], name) for name in ("chosen", "rejected", "margin", "margin (eval)")
    }
    window.show_past_run(finished.args[0].run_dir)
    after = {name: curve(train.plots.method.panels["preference"], name) for name in before}
    assert after == before
    assert "3 step(s)" in train.status_label.text()


def test_grpo_metrics_from_a_real_run_plot_reward_per_function_length_and_kl(window, qtbot):
    train = window.train_tab
    steps = read_run(GRPO_RUN).steps
    assert window.actions["past_run"].text() == "&Past runs…"
    window.show_past_run(str(GRPO_RUN))
    method = train.plots.method
    assert method.isVisibleTo(window) and set(method.panels) == {"reward", "length", "kl"}
    reward = method.panels["reward"]
    assert method.curve_names("reward") == ["mean reward", "length", "format"]
    assert curve(reward, "mean reward")[1] == [pytest.approx(s.extra["reward"]) for s in steps]
    assert curve(reward, "length")[1] == [pytest.approx(s.extra["rewards/length/mean"]) for s in steps]
    assert curve(reward, "format")[1] == [pytest.approx(s.extra["rewards/format/mean"]) for s in steps]
    assert curve(method.panels["length"], "mean length")[1] == [8.0, 8.0, 8.0]
    assert curve(method.panels["kl"], "KL")[1] == [pytest.approx(s.extra["kl"]) for s in steps]
    assert reward.drawn_points("format") == 3  # show_past_run draws at once
    assert train.progress.value() == 3

    # A new run starts with clean plots: the GRPO panels go (an SFT run would never show them).
    window.controller.start_training = lambda: False  # the run itself is not the point here
    train.start()
    assert not method.panels and not method.isVisibleTo(window)
    assert train.plots.loss.points("train") == 0


def test_sft_extras_are_not_method_plots_reward_functions_are_named_and_evals_marked():
    assert method_points({"mean_token_accuracy": 0.4, "entropy": 2.0, "num_tokens": 10.0}) == []
    points = method_points({"reward": 1.5, "rewards/my_reward/mean": 0.5, "rewards/my_reward/std": 0.1})
    assert [(p.panel, p.curve, p.value) for p in points] == [
        ("reward", "mean reward", 1.5),
        ("reward", "my_reward", 0.5),
    ]
    evaluation = eval_points(
        {"eval_rewards/margins": 0.3, "eval_loss": 1.0, "eval_rewards/my_reward/mean": 2.0}
    )
    assert [(p.panel, p.curve) for p in evaluation] == [
        ("preference", "margin (eval)"),
        ("reward", "my_reward (eval)"),
    ]


def test_reopening_a_resumed_run_keeps_each_step_once(tmp_path):
    lines = [step_event(s).to_dict() for s in (1, 2, 3, 2, 3, 4)]
    lines.append(EvalMetrics(step=4, eval_loss=1.0).to_dict())
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken")
    history = read_run(tmp_path)
    assert [s.step for s in history.steps] == [1, 2, 3, 4] and len(history.evals) == 1


def test_a_folder_without_metrics_gets_a_banner_not_a_crash(window, tmp_path):
    window.show_past_run(str(tmp_path))
    assert "no training metrics" in window.banner.text()


def test_method_settings_show_for_their_method_with_plain_words_tooltips(window):
    train, form = window.train_tab, window.train_tab.form
    combo = train.method_combo
    assert all(len(combo.itemData(row, Qt.ItemDataRole.ToolTipRole)) > 40 for row in range(combo.count()))
    assert "preference data" in combo.toolTip() and "prompt-only" in combo.toolTip()

    combo.setCurrentIndex(combo.findData("dpo"))
    assert window.controller.config.train.method == "dpo"
    assert form.shows("train.beta") and not form.shows("train.num_generations")
    combo.setCurrentIndex(combo.findData("grpo"))
    grpo = ("train.num_generations", "train.max_completion_length", "train.rewards", "train.kl_weight")
    assert all(form.shows(path) for path in grpo) and not form.shows("train.beta")
    assert all("GRPO only" in form.editors[path].toolTip() for path in grpo)
    combo.setCurrentIndex(combo.findData("sft"))
    assert not form.shows("train.beta") and not form.shows("train.rewards")


@pytest.mark.parametrize("name", ["preferences.jsonl", "prompts.jsonl"])
def test_dataset_tab_previews_pairs_and_prompt_only_rows(window, qtbot, name):
    controller, tab = window.controller, window.dataset_tab
    qtbot.waitUntil(lambda: controller.dataset is not None, timeout=TIMEOUT)  # the first (sample) preview
    with qtbot.waitSignal(controller.sig_dataset, timeout=TIMEOUT):
        tab.open_path(str(sample_dataset_path(name)))
    preview = controller.dataset
    first = json.loads(sample_dataset_path(name).read_text().splitlines()[0])
    row = preview.rows[0]
    cell = tab.rows_table.item(0, 2).text()
    page = tab.row_view.toPlainText()
    hint = window.train_tab.method_hint
    if name == "preferences.jsonl":
        assert preview.format == "preference" and "DPO or ORPO" in tab.summary_label.text()
        assert row.kind == "pair" and first["chosen"] in row.text and first["rejected"] in row.rejected_text
        assert first["prompt"] not in row.rejected_text  # the shared prompt is shown once
        assert cell.startswith(f"✔ {first['chosen']}") and f"✘ {first['rejected']}" in cell
        assert "Chosen answer" in page and "Rejected answer" in page and first["rejected"] in page
        assert "background-color:rgba(214,39,40" in tab.row_view.toHtml()  # the rejected answer, in red
        assert "train it with DPO or ORPO" in hint.text() and not hint.isHidden()  # SFT is chosen
    else:
        assert preview.format == "prompt" and "GRPO" in tab.summary_label.text()
        assert row.kind == "prompt" and first["prompt"] in row.text and row.text.endswith("assistant\n")
        assert row.answer == first["answer"] and f"(answer: {first['answer']})" in cell
        assert f"Reference answer: {first['answer']}" in page
        assert "train it with GRPO" in hint.text()
    methods = window.train_tab.method_combo
    methods.setCurrentIndex(methods.findData("dpo"))
    assert hint.isHidden() == (name == "preferences.jsonl")
    if name == "prompts.jsonl":
        assert (
            hint.text().startswith("DPO learns from preference pairs") and "holds prompt data" in hint.text()
        )
