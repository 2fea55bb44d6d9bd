import dataclasses
import json

import pytest

from gioada import GIOAda, ModelConfig, RunConfig, with_overrides


def test_model_config_fields_are_gioada_kwargs():
    cfg = ModelConfig(task_width=8, transform_width=8, disc_width=8)
    model = GIOAda(**dataclasses.asdict(cfg))
    assert dict(model.hparams) == dataclasses.asdict(cfg)


def test_json_round_trip(tmp_path):
    cfg = with_overrides(RunConfig(), **{"model.lam_input": 0.0, "data.shift_off": ["haze"], "steps": 7})
    cfg.save(tmp_path / "c.json")
    assert RunConfig.load(tmp_path / "c.json") == cfg
    assert cfg.data.shift_off == ("haze",) and cfg.model.betas == (0.5, 0.999)


@pytest.mark.parametrize("key, value, message", [
    ("model.lam_input", -1.0, "lam_input"),
    ("model.lam_output", float("nan"), "finite"),
    ("model.init_lr", "fast", "number"),
    ("data.height", 50, "multiple of 16"),
    ("data.batch_size", 0, "batch_size"),
    ("steps", 1.5, "integer"),
    ("model.nonsense", 1, "unknown config key"),
    ("data.label_space", "cityscapes19", "'vkitti10' with the simulator"),
])
def test_invalid_values_are_rejected_with_the_valid_range(key, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        with_overrides(RunConfig(), **{key: value})


def test_unknown_keys_in_json_are_errors(tmp_path):
    d = RunConfig().to_dict()
    d["model"]["typo_lr"] = 1
    (tmp_path / "c.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="typo_lr"):
        RunConfig.load(tmp_path / "c.json")
