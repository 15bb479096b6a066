"""The GPUs field of the Train tab's settings form: shown only where the detected hardware has several
CUDA GPUs (TrainTab passes core's HardwareInfo.gpu_count on), and what is chosen there is the run's
train.gpus, the setting `tunesmith train --gpus N` sets."""

from tunesmith.core.config import RunConfig
from tunesmith.desktop.widgets.settings_form import SettingsForm


def test_the_gpus_choice_appears_only_with_several_gpus_and_sets_the_run(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form)
    editor = form.editors["train.gpus"]
    assert editor.objectName() == "train.gpus"
    assert not form.shows("train.gpus")  # before the hardware is known
    form.show_gpu_choice(1)
    assert not form.shows("train.gpus")
    form.show_gpu_choice(2)
    assert form.shows("train.gpus")
    editor.setValue(2)  # what the user's arrows do; the form writes it into the run's config
    config = RunConfig()
    form.store(config, "train.gpus")
    assert config.train.gpus == 2
    form.show_gpu_choice(0)
    assert not form.shows("train.gpus")
