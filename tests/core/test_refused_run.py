"""A run refused by the checks before loading leaves no run folder (issue 21, point 4): the folder is
made only after the settings, the model's files and the dataset passed (engine.TrainingRun.run); a run
that fails later, while loading the model or training, keeps its folder for the train.log that says
why (tests/core/test_training.py checks that log)."""

from __future__ import annotations

from tunesmith.core.config import RunConfig
from tunesmith.core.events import Failed, RunStarted
from tunesmith.core.training.engine import TrainingRun


def test_a_dataset_that_cannot_be_used_refuses_the_run_without_a_folder(tmp_path):
    picture = tmp_path / "photo.json"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    events: list = []
    config = RunConfig(output_dir=str(tmp_path / "runs"))
    config.data.path = str(picture)
    result = TrainingRun(config, events.append).run()
    assert isinstance(result, Failed) and result.run_dir is None
    assert "this is not a text file: it looks like a PNG picture" in result.message + result.hint
    assert not any(isinstance(event, RunStarted) for event in events)
    assert not (tmp_path / "runs").exists()


def test_named_columns_reach_the_run_and_a_wrong_name_is_refused_before_loading(tmp_path):
    table = tmp_path / "qa.csv"
    table.write_text("Frage,Antwort\nWie heißt du?,Tunesmith.\n")
    config = RunConfig(output_dir=str(tmp_path / "runs"))
    config.data.path = str(table)
    config.data.columns = "question=Frage,answer=Answer"
    result = TrainingRun(config).run()
    assert isinstance(result, Failed) and "no column named 'Answer'" in result.message
    assert not (tmp_path / "runs").exists()
