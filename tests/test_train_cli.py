"""End to end: a few-step training run through the CLI writes a run that loads and evaluates."""
import json

import pytest
import torch

from gioada.checkpoint import load_model, load_run_config, save_run
from gioada.cli import build_parser, main, train_config
from gioada.config import DataConfig, RunConfig, with_overrides
from gioada.data import train_set
from gioada.data.synthetic import sample_to_tensors, train_scene_seed
from gioada.sim import render

# Also run under ONEDNN_MAX_CPU_ISA=AVX2 and =AVX512_CORE by `make test` (oneDNN's other kernels).
pytestmark = pytest.mark.isa

TINY = ["--height", "32", "--width", "64", "--batch-size", "2", "--task-width", "8", "--transform-width", "8",
        "--disc-width", "8", "--val-scenes", "2", "--eval-scenes", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--out", str(out), "--steps", "3", "--val-every", "2", *TINY]) == 0
    return out


def test_train_writes_a_complete_run(trained_run):
    for name in ("model.safetensors", "config.json", "metrics.json", "run.json", "log.csv"):
        assert (trained_run / name).is_file(), name
    cfg = load_run_config(trained_run)
    assert cfg.steps == 3 and cfg.data.height == 32
    saved = json.loads((trained_run / "config.json").read_text())["model"]
    assert saved["num_steps_per_epoch"] == 3 and saved["num_epochs"] == 1    # the schedule really used
    info = json.loads((trained_run / "run.json").read_text())
    assert info["steps_done"] == 3 and "python -m gioada train" in info["command"]
    metrics = json.loads((trained_run / "metrics.json").read_text())["target"]
    assert 0 <= metrics["miou"] <= 100 and len(metrics["per_class_iou"]) == 10
    log = (trained_run / "log.csv").read_text()
    assert "train/g_seg" in log and "val/miou" in log


def test_evaluate_cli_writes_json(trained_run, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", str(trained_run), "--domain", "both", "--scenes", "2", "--json", str(out),
                 "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"source", "target"}
    assert {"miou", "per_class_iou", "depth"} <= set(result["target"])
    assert "mIoU" in capsys.readouterr().out


def test_checkpoint_round_trip_is_exact(trained_run, tmp_path):
    model = load_model(trained_run)
    x = torch.rand(1, 3, 32, 64) * 2 - 1
    again = load_model(save_run(tmp_path / "copy", model, load_run_config(trained_run)))
    assert torch.equal(model(x)[0], again(x)[0])


def test_existing_output_is_never_overwritten(trained_run, capsys):
    before = (trained_run / "model.safetensors").read_bytes()
    assert main(["train", "--out", str(trained_run), "--steps", "1", *TINY]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (trained_run / "model.safetensors").read_bytes() == before


def test_init_from_starts_at_the_given_weights(trained_run, tmp_path):
    from gioada.train import make_model
    cfg = load_run_config(trained_run)
    import dataclasses
    model = make_model(dataclasses.replace(cfg, init_from=str(trained_run)))
    ref = load_model(trained_run)
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        if not k.startswith("val_"):
            assert torch.equal(a, b), k


def test_pickle_checkpoints_are_refused(tmp_path):
    """A weights file carrying a pickle payload is refused without running it."""
    import pickle
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    run = tmp_path / "evil"
    run.mkdir()
    (run / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    from gioada.config import RunConfig
    RunConfig().save(run / "config.json")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(run)
    assert not marker.exists()


def test_render_cli(tmp_path):
    assert main(["render", "--out", str(tmp_path), "--n", "2", "--height", "32", "--width", "64"]) == 0
    assert len(list(tmp_path.glob("*.png"))) == 8


def test_bad_arguments_give_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x"), "--steps", "1", "--lam-input", "-3", *TINY]) == 2
    assert "lam_input" in capsys.readouterr().err


def test_a_config_file_is_the_start_and_only_given_flags_override_it(tmp_path):
    path = tmp_path / "c.json"
    with_overrides(RunConfig(), **{"model.lam_input": 0.3, "data.shift": 1.5, "steps": 40}).save(path)
    cfg = train_config(build_parser().parse_args(["train", "--out", "x", "--config", str(path), "--steps", "9"]))
    assert (cfg.model.lam_input, cfg.data.shift, cfg.steps) == (0.3, 1.5, 9)
    assert cfg.model.num_steps_per_epoch == 9
    plain = train_config(build_parser().parse_args(["train", "--out", "x", "--lam-output", "0", "--oracle"]))
    assert plain.model.lam_output == 0 and plain.data.oracle and plain.model.lam_input == RunConfig().model.lam_input


def test_geometry_switches_and_crops_are_flags():
    parse = lambda *a: train_config(build_parser().parse_args(["train", "--out", "x", *a]))  # noqa: E731
    default = parse()
    assert default.model.transform_depth and default.model.output_disc_depth
    assert (default.data.height, default.data.width, default.data.crop) == (128, 384, (64, 192))
    cfg = parse("--no-transform-depth", "--crop-height", "96", "--crop-width", "256")
    assert not cfg.model.transform_depth and cfg.model.output_disc_depth and cfg.data.crop == (96, 256)
    assert not parse("--no-output-disc-depth").model.output_disc_depth
    assert default.model.lam_content == 0 and parse("--lam-content", "0.5").model.lam_content == 0.5


def test_a_run_saved_before_the_geometry_switches_loads_with_its_old_meaning(trained_run, tmp_path):
    """Before the switches, lam_depth = 0 also took depth away from G and D_out."""
    config = json.loads((trained_run / "config.json").read_text())
    for key in ("transform_depth", "output_disc_depth"):
        del config["model"][key]
    config["model"]["lam_depth"] = 0.0
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = load_run_config(tmp_path)
    assert not old.model.transform_depth and not old.model.output_disc_depth
    config["model"]["lam_depth"] = 0.5
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert load_run_config(tmp_path).model.transform_depth


def test_training_crops_are_windows_of_the_native_frame():
    cfg = DataConfig(height=64, width=192, crop_height=32, crop_width=64)
    real, fake, labels, depth = train_set(cfg, 2, seed=3)[1]
    assert real.shape == fake.shape == (3, 32, 64) and labels.shape == (32, 64) and depth.shape == (1, 32, 64)
    image, full_labels, full_depth = sample_to_tensors(render(train_scene_seed(3, "source", 1), "source", 64, 192))
    hits = [(y, x) for y in range(33) for x in range(129) if torch.equal(image[:, y:y + 32, x:x + 64], fake)]
    assert len(hits) == 1
    (y, x), = hits
    assert torch.equal(full_labels[y:y + 32, x:x + 64], labels) and torch.equal(full_depth[:, y:y + 32, x:x + 64], depth)


def test_steps_per_second_times_the_training_loop_not_end_of_training_work(monkeypatch):
    """A callback's work after the last step (the app's final preview) is not training time: train's clock
    is made to jump 1000 s inside that callback, and the run's training seconds do not see the jump."""
    import time
    import types

    from pytorch_lightning.callbacks import Callback

    from gioada import train as train_module

    jump = [0.0]
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    clock.perf_counter = lambda: time.perf_counter() + jump[0]
    monkeypatch.setattr(train_module, "time", clock)

    class SlowEnd(Callback):
        def on_train_end(self, trainer, pl_module):
            jump[0] += 1000.0                  # 1000 s of end-of-training work, on train's clock

    cfg = train_config(build_parser().parse_args(["train", "--out", "unused", "--steps", "2", "--val-every", "2",
                                                  *TINY]))
    result = train_module.train(cfg, None, callbacks=[SlowEnd()], progress=False, eval_scenes=2)
    assert jump[0] == 1000.0                   # the callback ran, after the timer stopped
    assert result.info["steps_done"] == 2 and result.info["train_seconds"] < 1000.0


def test_a_runs_command_comes_from_the_flag_table_and_rebuilds_its_config(tmp_path):
    from gioada.cli import train_command
    cfg = with_overrides(RunConfig(), **{"steps": 40, "seed": 3, "model.lam_content": 0.5, "model.transform_depth": False,
                                          "model.ema_decay": 0.999, "model.gan_loss": "lsgan", "model.spectral_norm": True,
                                          "model.warmup_steps": 5, "data.shift_off": ["haze"], "data.crop_width": 96,
                                          "init_from": str(tmp_path)})
    args = train_command(cfg, tmp_path / "again", eval_scenes=7)
    assert args[:4] == ["python", "-m", "gioada", "train"] and args[-2:] == ["--eval-scenes", "7"]
    assert "--no-transform-depth" in args and "--no-output-disc-depth" not in args and "--spectral-norm" in args
    parsed = build_parser().parse_args(args[3:])
    assert train_config(parsed) == cfg
    assert train_config(build_parser().parse_args(train_command(RunConfig(), tmp_path / "x")[3:])) == RunConfig()


def test_a_model_schedule_that_disagrees_with_the_run_is_refused_not_rewritten():
    from gioada.config import ModelConfig
    with pytest.raises(ValueError, match=r"model.num_steps_per_epoch=500 is invalid: expected 40 or left out"):
        RunConfig(model=ModelConfig(num_steps_per_epoch=500), steps=40)
    with pytest.raises(ValueError, match=r"model.seed=5 is invalid: .*the run's steps \(1000\) and seed \(0\)"):
        RunConfig(model=ModelConfig(seed=5))
    cfg = RunConfig(model=ModelConfig(), steps=40, seed=3)          # left out: they follow the run
    assert (cfg.model.num_steps_per_epoch, cfg.model.seed, cfg.model.num_epochs) == (40, 3, 1)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg                # a saved config loads as it was


def test_an_imagenet_encoder_from_random_weights_is_refused_before_training(tmp_path, capsys):
    """Its norms are frozen at ImageNet's statistics: from random weights it would pass no signal at all."""
    argv = ["train", "--out", str(tmp_path / "run"), "--encoder", "efficientnet-lite0", "--steps", "1"]
    assert main(argv) != 0
    assert "Add --pretrained-backbone" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_imagenet_encoder_trains_on_this_oneDNN_path(tmp_path):
    """T on EfficientNet-Lite0 from the shipped ImageNet weights: two training steps on this CPU's kernels (and
    again under AVX2 and AVX512_CORE in `make test`; the scratch encoder's strided 1x1 skip once crashed on some),
    and the encoder's weights move and stay finite."""
    from safetensors.torch import load_file

    from gioada.constants import ASSETS
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--encoder", "efficientnet-lite0", "--pretrained-backbone", "--steps", "2",
                 "--height", "64", "--width", "192", "--crop-height", "32", "--crop-width", "96", "--batch-size", "2",
                 "--eval-scenes", "2", "--val-scenes", "2"]) == 0
    trained = load_model(out).task_network.backbone.state_dict()
    shipped = load_file(ASSETS / "backbones" / "efficientnet-lite0.safetensors")
    assert all(torch.isfinite(v).all() for v in trained.values())
    assert not torch.equal(trained["stem.0.weight"], shipped["stem.0.weight"].float())
