"""Host work the trainer does every step, cut where it repeats the same answer (core.training.methods)."""

import torch


class _Rows:
    """One tokenized row as prepare_sft hands it to the trainer."""

    def __init__(self):
        from datasets import Dataset

        self.train = Dataset.from_list(
            [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": [1, 2, 3]}]
        )
        self.eval = None


def test_flops_count_the_parameters_once_with_the_stock_formula(tmp_path, monkeypatch):
    from transformers import Trainer

    from tunesmith.core.config import RunConfig
    from tunesmith.core.hardware import detect_hardware
    from tunesmith.core.models.loading import load_for_training
    from tunesmith.core.training.methods import build_trainer

    config = RunConfig()
    config.model.source, config.model.precision = "demo", "fp32"
    config.validate()
    loaded = load_for_training(config.model, config.lora, detect_hardware())
    trainer = build_trainer(config, loaded, _Rows(), tmp_path, []).trainer
    batches = [{"input_ids": torch.ones(2, n, dtype=torch.long)} for n in (7, 64, 3)]
    stock = [Trainer.floating_point_ops(trainer, batch) for batch in batches]
    walks = []
    counted = type(loaded.model.get_base_model()).num_parameters
    monkeypatch.setattr(
        type(loaded.model.get_base_model()),
        "num_parameters",
        lambda self, **kw: walks.append(kw) or counted(self, **kw),
    )
    assert [trainer.floating_point_ops(batch) for batch in batches] == stock
    assert stock[1] == 6 * 2 * 64 * counted(loaded.model.get_base_model(), exclude_embeddings=True) > 0
    assert walks == [{"exclude_embeddings": True}]  # the model was walked for the first batch only
