"""The ablation rows are exactly the settings they name, and an interrupted ablation resumes."""
import json

import pytest

from gioada.ablation import (FINAL, ROWS, adapts_input, command, evaluation_spread, levels_off, median_validation_seed,
                             pending, reevaluate, run_dir, set_aside, summarise, translation_check,
                             translation_figure, validation_curve)
from gioada.checkpoint import load_model, load_run_config
from gioada.cli import build_parser, main, train_config
from gioada.evaluate import evaluate
from gioada.pretrained import SHIPPED, shipped_source


def _config(row, study=None):
    argv = (command("runs/x", row, 0, study=study) if study else command("runs/x", row, 0))[3:]  # after "python -m gioada"
    return train_config(build_parser().parse_args(argv))


@pytest.mark.parametrize("row, lam_in, lam_out, lam_depth, g_depth, d_depth, oracle, lam_content", [
    ("source-only", 0, 0, 0.5, True, True, False, 0),
    ("input-only", 0.1, 0, 0.5, True, True, False, 0),
    ("output-only", 0, 0.02, 0.5, True, True, False, 0),
    ("gioada", 0.1, 0.02, 0.5, True, True, False, 0),
    ("no-depth", 0.1, 0.02, 0, False, False, False, 0),
    ("no-depth-loss", 0.1, 0.02, 0, True, True, False, 0),
    ("no-g-depth", 0.1, 0.02, 0.5, False, True, False, 0),
    ("no-dout-depth", 0.1, 0.02, 0.5, True, False, False, 0),
    ("oracle", 0, 0, 0.5, True, True, True, 0),
    ("gioada-content", 0.1, 0.02, 0.5, True, True, False, 1),
    ("source-only-imagenet", 0, 0, 0.5, True, True, False, 0),
    ("gioada-imagenet", 0.1, 0.02, 0.5, True, True, False, 0),
    ("oracle-imagenet", 0, 0, 0.5, True, True, True, 0),
])
def test_each_row_is_the_setting_it_names(row, lam_in, lam_out, lam_depth, g_depth, d_depth, oracle, lam_content):
    cfg = _config(row)
    m = cfg.model
    assert (m.lam_input, m.lam_output, m.lam_depth, m.lam_content) == (lam_in, lam_out, lam_depth, lam_content)
    assert (m.transform_depth, m.output_disc_depth, cfg.data.oracle) == (g_depth, d_depth, oracle)
    assert (cfg.data.height, cfg.data.width, cfg.data.crop, cfg.steps) == (128, 384, (64, 192), 3000)
    imagenet = row.endswith("-imagenet")            # T's encoder starts from ImageNet's weights in these rows only
    assert (m.encoder, m.pretrained_backbone) == (("efficientnet-lite0", True) if imagenet else ("resnet", False))


@pytest.mark.parametrize("row", [r for r in ROWS if not r.endswith("-imagenet")])
def test_the_final_set_is_each_ablation_row_with_the_imagenet_encoder_at_6000_steps(row):
    final, ablation = _config(row, FINAL), _config(row)
    assert (final.model.encoder, final.model.pretrained_backbone, final.steps, final.seed) == \
        ("efficientnet-lite0", True, 6000, 0)
    same = lambda cfg: (cfg.model.lam_input, cfg.model.lam_output, cfg.model.lam_depth, cfg.model.lam_content,  # noqa: E731
                        cfg.model.transform_depth, cfg.model.output_disc_depth, cfg.data)
    assert same(final) == same(ablation)                 # the row's own settings and the data, unchanged
    assert FINAL.seeds == (0, 1, 2) and "gioada-imagenet" not in FINAL.rows


def test_the_ablation_command_takes_one_study(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ablation", "--screen", "--final"])
    assert "not allowed with" in capsys.readouterr().err
    assert main(["ablation", "--final", "--shipped"]) == 2


def test_rows_cover_the_shipped_models():
    assert {shipped_source(name)[0] for name in SHIPPED} <= set(ROWS)
    assert shipped_source("gioada-seed1") == ("gioada", 1) and shipped_source("gioada-content") == ("gioada-content", 0)


def _fake_run(out, row, seed, miou, thin):
    path = run_dir(out, row, seed)
    path.mkdir(parents=True)
    per_class = {c: 50.0 for c in ("road", "building", "pole", "traffic light", "traffic sign", "vegetation",
                                   "terrain", "sky", "car", "truck")}
    per_class |= {"pole": thin, "traffic light": thin, "traffic sign": thin}
    (path / "metrics.json").write_text(json.dumps({"target": {"miou": miou, "per_class_iou": per_class,
                                                              "depth": {}, "scenes": 500}}))
    (path / "run.json").write_text(json.dumps({"command": f"train {row} {seed}"}))


def test_finished_runs_are_skipped_and_summarised_as_mean_and_std(tmp_path):
    _fake_run(tmp_path, "gioada", 0, 60.0, 10.0)
    _fake_run(tmp_path, "gioada", 1, 64.0, 20.0)
    assert ("gioada", 0) not in pending(tmp_path, ["gioada"], [0, 1, 2])
    # seed by seed, so a short sitting finishes whole seeds of every row first
    assert pending(tmp_path, ["gioada", "oracle"], [0, 1, 2]) == [("oracle", 0), ("oracle", 1), ("gioada", 2),
                                                                   ("oracle", 2)]
    s = summarise(tmp_path)["gioada"]
    assert s["miou"]["mean"] == 62.0 and s["miou"]["std"] == pytest.approx(2.8284, abs=1e-3)
    assert s["thin_miou"]["mean"] == 15.0 and s["seeds"]["seed1"]["command"] == "train gioada 1"


def test_the_seed_to_ship_is_the_one_with_the_median_final_validation(tmp_path):
    assert median_validation_seed(tmp_path, "gioada") is None
    for seed, last in [(0, 0.30), (1, 0.55), (2, 0.41)]:      # the test mIoU plays no part in the choice
        _fake_run(tmp_path, "gioada", seed, 90.0 - seed, 10.0)
        (tmp_path / "gioada" / f"seed{seed}" / "log.csv").write_text(f"step,val/miou\n500,0.9\n1000,{last}\n")
    assert median_validation_seed(tmp_path, "gioada").name == "seed2"
    (tmp_path / "gioada" / "seed2" / "log.csv").write_text("step,val/miou\n500,\n")   # logged no validation
    assert median_validation_seed(tmp_path, "gioada").name == "seed0"      # the lower middle of two


def _log(run, values):
    """A log.csv validated every 500 steps with ``values`` (fractions, as Lightning logs them)."""
    run.mkdir(parents=True, exist_ok=True)
    lines = ["step,loss,val/miou"] + [f"{500 * (i + 1) - 1},1.0,{v}" for i, v in enumerate(values)]
    (run / "log.csv").write_text("\n".join([*lines[:2], "3,0.9,", *lines[2:]]) + "\n")   # a training row too


def test_a_validation_curve_levels_off_where_no_later_validation_is_a_point_higher(tmp_path):
    _log(tmp_path / "r", [0.30, 0.60, 0.795, 0.80, 0.805])
    assert validation_curve(tmp_path / "r") == [(500, 30.0), (1000, 60.0), (1500, 79.5), (2000, 80.0),
                                                (2500, 80.5)]
    assert levels_off(validation_curve(tmp_path / "r")) == 1500                 # 80.5 is 1.0 above 79.5
    assert levels_off(validation_curve(tmp_path / "r"), tolerance=0.5) == 2000
    assert levels_off([(500, 30.0), (1000, 40.0), (1500, 50.0)]) is None        # still rising at its end
    assert levels_off([(500, 52.0), (1000, 40.0), (1500, 51.5)]) == 500         # a dip, then back: level from 500
    assert levels_off([]) is None and validation_curve(tmp_path / "none") == []


def test_the_curves_command_draws_every_run_and_says_where_each_levels_off(tmp_path, capsys):
    from PIL import Image
    _log(tmp_path / "oracle" / "seed0", [0.4, 0.8, 0.805])
    _log(tmp_path / "gioada" / "seed1", [0.2, 0.3, 0.4])
    out = tmp_path / "curves.png"
    assert main(["curves", str(tmp_path / "oracle" / "seed0"), str(tmp_path / "gioada" / "seed1"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "oracle seed0 (1500 steps): validation mIoU 80.5 at the end; levels off at step 1000" in printed
    assert "gioada seed1 (1500 steps): validation mIoU 40.0 at the end; still rising at its end" in printed
    assert Image.open(out).size[0] > 500
    assert main(["curves", str(tmp_path / "missing"), "--out", str(out)]) == 2      # a clear error, no traceback
    assert "has no validation" in capsys.readouterr().err


def test_shipped_trains_exactly_the_missing_runs_assets_ships(tmp_path, monkeypatch):
    import subprocess
    import types
    started = []

    def run(cmd, **kw):
        started.append(cmd[cmd.index("--out") + 1])
        return types.SimpleNamespace(returncode=0)

    monkeypatch.setattr(subprocess, "run", run)
    _fake_run(tmp_path, "gioada", 0, 40.0, 1.0)                     # finished: not trained again
    assert main(["ablation", "--out", str(tmp_path), "--shipped"]) == 0
    wanted = {str(run_dir(tmp_path, *shipped_source(name))) for name in SHIPPED}
    assert set(started) == wanted - {str(run_dir(tmp_path, "gioada", 0))} and len(started) == len(SHIPPED) - 1
    assert str(run_dir(tmp_path, "oracle", 1)) not in started                   # no seed that does not ship
    started.clear()
    assert main(["ablation", "--out", str(tmp_path), "--shipped", "--rows", "oracle"]) != 0 and not started


def test_an_interrupted_run_is_pending_and_set_aside_not_deleted(tmp_path):
    partial = run_dir(tmp_path, "oracle", 0)
    partial.mkdir(parents=True)
    (partial / "log.csv").write_text("step\n1\n")
    assert ("oracle", 0) in pending(tmp_path, ["oracle"], [0])
    assert set_aside(partial) == partial.with_name("seed0.incomplete")
    partial.mkdir()
    assert set_aside(partial) == partial.with_name("seed0.incomplete-2")
    assert (partial.with_name("seed0.incomplete") / "log.csv").read_text() == "step\n1\n"
    assert not partial.exists() and set_aside(partial) is None
    assert "oracle" not in summarise(tmp_path)


def test_evaluation_spread_reproduces_the_mIoU_and_measures_scene_noise(tmp_path):
    out = tmp_path / "tiny"
    assert main(["train", "--out", str(out), "--steps", "2", "--val-every", "2", "--height", "32", "--width", "96",
                 "--batch-size", "2", "--task-width", "8", "--transform-width", "8", "--disc-width", "8",
                 "--val-scenes", "2", "--eval-scenes", "2", "--device", "cpu"]) == 0
    spread = evaluation_spread(out, scenes=6, resamples=50)
    assert spread["miou"] == pytest.approx(evaluate(load_model(out), load_run_config(out).data, "target", 6)["miou"],
                                           abs=1e-4)
    assert spread["bootstrap_std"] > 0 and spread["scenes"] == 6


def test_translation_check_compares_G_with_the_target_rendering_of_the_same_scene(tmp_path):
    """Without input-level adaptation G is bypassed: G(source) is the source, so it is exactly as far from the
    target rendering as the source, and T's mIoU on it is its mIoU on the source domain."""
    out = tmp_path / "ablation" / "source-only" / "seed0"
    assert main(["train", "--out", str(out), "--steps", "2", "--val-every", "2", "--height", "32", "--width", "96",
                 "--batch-size", "2", "--task-width", "8", "--transform-width", "8", "--disc-width", "8",
                 "--lam-input", "0", "--lam-output", "0", "--val-scenes", "2", "--eval-scenes", "2",
                 "--device", "cpu"]) == 0
    check = translation_check(out, scenes=4)
    data = load_run_config(out).data
    assert not adapts_input(out) and check["scenes"] == 4
    assert check["translated_to_target"] == pytest.approx(check["source_to_target"]) and check["source_to_target"] > 0.05
    model = load_model(out)
    assert check["miou_translated"] == pytest.approx(evaluate(model, data, "source", 4)["miou"], abs=1e-3)
    assert check["miou_target"] == pytest.approx(evaluate(model, data, "target", 4)["miou"], abs=1e-3)
    # The label-swap control: a bypassed G ignores the labels it is given, so T sees the scene's own image.
    assert check["swapped_follows_scene"] == pytest.approx(check["miou_translated"])
    assert 0 < check["labels_overlap"] < 100
    figure = translation_figure(tmp_path / "ablation", "source-only", scene=1)
    assert figure.shape[1:] == (96, 3) and figure.shape[0] == 3 * (32 + 26)      # source, seed 0's G, target


def test_runs_evaluated_on_whole_frames_are_evaluated_again_window_by_window(tmp_path):
    out = tmp_path / "ablation" / "gioada" / "seed0"
    assert main(["train", "--out", str(out), "--steps", "2", "--val-every", "2", "--height", "32", "--width", "96",
                 "--crop-width", "64", "--batch-size", "2", "--task-width", "8", "--transform-width", "8",
                 "--disc-width", "8", "--val-scenes", "2", "--eval-scenes", "3", "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"]["inference"] == "windows of 32×64"
    assert reevaluate(tmp_path / "ablation") == []                      # already today's inference: untouched
    old = dict(metrics["target"], miou=-1.0)
    del old["inference"]                                                 # as written before windowed inference
    (out / "metrics.json").write_text(json.dumps({"target": old, "source": {"miou": 1.0}}))
    assert reevaluate(tmp_path / "ablation", log=lambda _: None) == [out]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["superseded"] == [old] and metrics["target"]["scenes"] == 3
    assert metrics["source"] == {"miou": 1.0}                           # nothing else in the file is lost
    model = load_model(out)
    assert metrics["target"]["miou"] == pytest.approx(evaluate(model, load_run_config(out).data, "target", 3)["miou"])
    assert summarise(tmp_path / "ablation")["gioada"]["seeds"]["seed0"]["inference"] == "windows of 32×64"
    assert reevaluate(tmp_path / "ablation") == []
