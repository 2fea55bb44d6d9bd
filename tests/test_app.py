"""The app and the library behind it: explore, uploads, fine-tuning, step once, and bad input of every kind.

A tiny server runs on localhost with two tiny models (32×64, width 8); gradio_client drives it the way an
API user would, skipping the sliders. Every bad input must give a clear error and leave the app serving.
"""
from __future__ import annotations

import io
import json
import math
import pickle
import struct
import subprocess
import sys
import time
import zlib
from html import escape as html_escape
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning.callbacks import Callback

import app
from gioada import DataConfig, ModelConfig, RunConfig
from gioada.app.diagram import render as render_diagram
from gioada.app.explore import Explorer
from gioada.app.finetune import FinetuneManager, FinetuneParams, Snapshot, safe_run_name
from gioada.app.plots import CHANCE, CONFIDENCE_SERIES, LOSS_SERIES, curve_frame
from gioada.app.registry import ModelRegistry
from gioada.app.scenes import MAX_SCENE
from gioada.app.ui import explore_tab, finetune_tab, learn_tab
from gioada.app.ui.cards import progress_html
from gioada.app.uploads import WORK_PIXELS, fit_to, load_upload
from gioada.app.validation import check_number
from gioada.checkpoint import is_run_dir, load_model, load_run_config, read_json
from gioada.evaluate import evaluate
from gioada.train import train

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

# Gradio's own pandas use under pandas 3; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*", "ignore:The copy keyword is deprecated")

TINY = FinetuneParams(steps=2, batch_size=2, height=32, lam_input=0.1, lam_output=0.1)


def make_tiny_run(path: Path, lam_input: float = 0.1, lam_output: float = 0.1) -> Path:
    """A 2-step run at 32×64 with width-8 networks: seconds on a CPU."""
    cfg = RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8, lam_input=lam_input,
                                      lam_output=lam_output),
                    data=DataConfig(height=32, width=64, batch_size=2, val_scenes=2), steps=2, val_every=2)
    train(cfg, path, progress=False, eval_scenes=2)
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app")
    assets, runs = root / "assets", root / "runs"
    make_tiny_run(assets / "gioada")
    make_tiny_run(assets / "source-only", 0.0, 0.0)
    runs.mkdir()
    return {"root": root, "assets": assets, "runs": runs}


def test_a_model_description_names_every_switch_away_from_the_default(dirs, tmp_path):
    import json
    import shutil
    registry = ModelRegistry(dirs["assets"], tmp_path / "runs", device="cpu")
    plain = registry.describe("gioada")
    assert plain.startswith("λ_in 0.1 · λ_out 0.1 · λ_depth 0.5 · 2 steps at 32×64")
    assert "content" not in plain and "without depth" not in plain
    run = tmp_path / "runs" / "switched"
    shutil.copytree(dirs["assets"] / "gioada", run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"] |= {"lam_content": 0.5, "transform_depth": False, "output_disc_depth": False}
    cfg["data"] |= {"crop_height": 32, "crop_width": 32}
    (run / "config.json").write_text(json.dumps(cfg))
    key = next(k for k in registry.keys() if k.endswith("switched"))
    assert ("λ_content 0.5 · G without depth · D_out without depth · 2 steps on 32×32 crops of 32×64 frames"
            in registry.describe(key))
    assert "target mIoU" in plain and "on 2 held-out scenes" in plain and " · seed 0 · " in plain
    cfg["model"] |= {"d_lr_scale": 0.25, "spectral_norm": True, "gan_loss": "lsgan", "d_label_smoothing": 0.1,
                     "warmup_steps": 300, "ema_decay": 0.999, "label_dropout": 0.5, "encoder": "efficientnet-lite0",
                     "pretrained_backbone": True}
    (run / "config.json").write_text(json.dumps(cfg))
    assert ("D's learning rate ×0.25 · spectral norm in D · LSGAN losses · D's real label 0.9 · 300 warm-up steps "
            "of T alone · EMA weights (decay 0.999) · G's labels dropped 50% · T's encoder efficientnet-lite0 from "
            "ImageNet") in registry.describe(key)


@pytest.fixture(scope="module")
def served(dirs):
    demo = app.build_demo(dirs["assets"], dirs["runs"], eval_scenes=2, defaults=TINY)
    _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False)
    yield demo, client
    demo.close()


def finetune_args(**over) -> list:
    args = dict(lam_input=0.1, lam_output=0.1, lam_depth=0.5, lr=1e-3, steps=2, batch=2, height=32, seed=0,
                start_from="", run_name="")
    args.update(over)
    return list(args.values())


def png_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def explore_ok(client: Client) -> None:
    """The app still answers a normal request."""
    out = client.predict("gioada", "", 1, 1.0, api_name="/explore")
    assert Path(out[1]).is_file() and "Held-out scene #1" in out[0]


# ---------------------------------------------------------------------------------------------------
# The app over HTTP
# ---------------------------------------------------------------------------------------------------
def test_every_event_is_named(served):
    demo, _ = served
    names = [fn.api_name for fn in demo.fns.values()]
    assert all(n and not n.startswith("lambda") for n in names), names
    assert len(set(names)) == len(names)
    assert {"explore", "explore_upload", "finetune", "stop", "lab_reset", "lab_step_d", "lab_play"} <= set(names)


def test_random_scene_shows_a_number_whose_view_was_computed_before_the_click(served):
    demo, client = served
    explorer = demo.gioada["explorer"]
    client.predict("gioada", "source-only", 1.0, api_name="/prefetch_random")    # as after the first view
    deadline = time.monotonic() + 60
    while explorer._prefetching and time.monotonic() < deadline:                 # computed in the background
        time.sleep(0.05)
    runs = []
    hook = explorer.registry.load("gioada").task_network.register_forward_hook(lambda *a: runs.append(1))
    try:
        n, *out = client.predict("gioada", "source-only", 1.0, api_name="/explore_random")   # the Random click
        assert isinstance(n, int) and 0 <= n <= MAX_SCENE
        assert f"scene #{n} " in out[0] and not runs                              # served from the cache
        m, *out = client.predict("gioada", "source-only", 1.0, api_name="/explore_random")
        assert m != n and f"scene #{m} " in out[0] and runs           # taken once: the next click draws afresh
    finally:
        hook.remove()
    client.predict("no-such-model", "", "not a number", api_name="/prefetch_random")  # bad values: no error


def test_a_scene_number_being_typed_is_computed_before_enter(served):
    demo, client = served
    explorer = demo.gioada["explorer"]

    def settled():
        deadline = time.monotonic() + 60
        while explorer._prefetching and time.monotonic() < deadline:            # computed in the background
            time.sleep(0.05)

    client.predict("gioada", "source-only", 4242, 1.0, api_name="/prefetch_typed")
    settled()
    runs = []
    hook = explorer.registry.load("gioada").task_network.register_forward_hook(lambda *a: runs.append(1))
    try:
        out = client.predict("gioada", "source-only", 4242, 1.0, api_name="/explore_scene_number")   # Enter
    finally:
        hook.remove()
    assert "scene #4242 " in out[0] and not runs                                 # served from the cache
    views = len(explorer._views)
    client.predict("gioada", "source-only", "42x", 1.0, api_name="/prefetch_typed")   # not a number yet: no error
    settled()
    assert len(explorer._views) == views


def test_explore_compares_two_models(served):
    _, client = served
    t = time.perf_counter()
    out = client.predict("gioada", "source-only", 3, 1.0, api_name="/explore")
    latency = time.perf_counter() - t
    # (the two rows' visibility updates are layout, not values: the client skips them)
    # title, scene strip, then per model: title, 2 before/after sliders, depth+D_in panel, numbers, downloads
    assert len(out) == 15
    title, strip = out[:2]
    assert "Held-out scene #3" in title and "shift strength 1" in title
    assert "`gioada`" in out[2] and "`source-only`" in out[8]
    for path in (strip, *out[3], *out[4], out[5], *out[9], *out[10], out[11]):
        assert Path(path).is_file(), path
    assert "mIoU on target, this scene" in out[6] and "50%" in out[6]        # model A's numbers, chance marked
    assert "No adversaries" in out[12]                           # model B (source-only) is explained
    labels, depth = (Image.open(f) for f in out[7])              # raw outputs: indexed PNG, 16-bit PNG in cm
    assert labels.mode == "P" and labels.getpalette()[:3] == [128, 64, 128]   # class 0, road
    assert np.asarray(labels).max() < 10 and depth.mode.startswith("I") and np.asarray(depth).max() > 100
    print(f"explore, two models, over HTTP: {latency * 1000:.0f} ms")


def test_explore_rejects_bad_values_and_keeps_serving(served):
    _, client = served
    cases = [(("gioada", "", "abc", 1.0), "scene='abc' is not a number"),
             (("gioada", "", 3, "nan"), "expected a number in [0, 2]"),
             (("gioada", "", 3, 7), "expected a number in [0, 2]"),
             (("gioada", "", -5, 1.0), "expected an integer in [0,"),
             (("../../etc/passwd", "", 3, 1.0), "unknown model"),
             (("/etc", "", 3, 1.0), "unknown model")]
    for args, message in cases:
        with pytest.raises(AppError, match=message.replace("[", r"\[").replace("(", r"\(")):
            client.predict(*args, api_name="/explore")
    explore_ok(client)


def test_uploads_good_and_bad(served, tmp_path):
    _, client = served
    good = tmp_path / "photo.jpg"
    good.write_bytes(png_bytes(Image.new("RGB", (120, 90), (90, 120, 160)), "JPEG"))
    out = client.predict(handle_file(str(good)), "gioada", "source-only", api_name="/explore_upload")
    assert "Your image (120×90)" in out[0] and Path(out[1]).is_file()
    assert out[3] is None and Path(out[4][0]).is_file()          # no source to translate; photo vs prediction
    assert "never saw a real photograph" in out[-1] and "gioada, source-only" in out[-1] and "--target kitti:" in out[-1]

    bad = {"corrupt.png": (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "truncated or corrupt"),
           "notes.png": (b"just some text, not an image", "not an image we can read"),
           "truncated.png": (png_bytes(Image.new("RGB", (200, 200), (10, 200, 30)))[:120], "truncated or corrupt"),
           "dot.png": (png_bytes(Image.new("RGB", (1, 1))), "too small")}
    for name, (data, message) in bad.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(AppError, match=message):
            client.predict(handle_file(str(path)), "gioada", "", api_name="/explore_upload")
    explore_ok(client)


@pytest.mark.isa
def test_finetune_two_steps_saves_a_selectable_run(served, dirs):
    demo, client = served
    t = time.perf_counter()
    out = client.predict(*finetune_args(run_name="../../escape/../me"), api_name="/finetune")
    progress, losses, confidences, preview, result, table = out
    assert "Finished 2 steps" in progress and "&#x27;escape-me&#x27;" in progress, progress
    assert "→" in result and "points" in result                 # before → after mIoU
    # The two plots' points (the browser draws them): every loss term and P(real) of both discriminators.
    drawn = {name for plot in (losses, confidences) for _, value, name in plot["data"] if value is not None}
    assert {"seg", "depth", "D_in", "D_in · target", "D_out · G(src)", "chance (50%)"} <= drawn
    assert Path(preview).is_file()
    assert len(table["data"]) == 10                              # per-class IoU, before and after
    # Path traversal went nowhere: the run is inside runs/, named safely; nothing escaped.
    assert is_run_dir(dirs["runs"] / "escape-me")
    assert not (dirs["root"] / "escape").exists() and not (dirs["root"].parent / "escape").exists()
    metrics = read_json(dirs["runs"] / "escape-me", "metrics.json")
    assert {"target", "target_before"} <= set(metrics)
    # The saved command reproduces the run on the command line: native frame and training crops.
    assert "--height 128 --width 384 --crop-height 32 --crop-width 96" in read_json(dirs["runs"] / "escape-me",
                                                                                   "run.json")["command"]
    assert (dirs["runs"] / "escape-me" / "log.csv").read_text().startswith("step,")
    # The collapse watch measured the start and the end on its held-out scenes.
    watch = demo.gioada["finetune"].current.snapshot().watch
    assert [step for step, _ in watch] == [0, 2] and all(0 <= m <= 100 for _, m in watch)
    # The new run is offered in Explore and works there; the shipped models were not touched.
    assert "runs/escape-me" in demo.gioada["registry"].keys()
    client.predict("runs/escape-me", "gioada", 2, 0.5, api_name="/explore")
    assert sorted(p.name for p in dirs["assets"].iterdir()) == ["gioada", "source-only"]
    print(f"2-step fine-tune over HTTP: {time.perf_counter() - t:.1f} s")


def test_a_finetune_whose_watched_miou_falls_past_the_collapse_margin_is_flagged(tmp_path):
    """The rule of the ablation's collapses (COLLAPSE_MARGIN points), against the best the run has reached."""
    from gioada.app.finetune import FinetuneJob
    from gioada.constants import COLLAPSE_MARGIN
    job = FinetuneJob(FinetuneParams(), RunConfig(), tmp_path / "run")
    for step, miou in ((0, 40.0), (10, 45.0), (20, 45.0 - COLLAPSE_MARGIN + 0.5)):
        job._watched(step, miou)
    assert job.snapshot().warning == ""                         # 9.5 points below its best: not a collapse
    job._watched(30, 34.5)
    warning = job.snapshot().warning
    assert "fell from 45.0 (step 10) to 34.5 (step 30)" in warning and "another seed" in warning
    job._watched(40, 20.0)
    assert job.snapshot().warning == warning                    # flagged once, at the first collapse
    assert html_escape(warning) in progress_html(job.snapshot())


def test_a_finetune_whose_g_paints_by_label_is_flagged(tmp_path):
    """The label-swap check: T following the labels G was given LABEL_MARGIN points more than the scene."""
    from gioada.app.finetune import LABEL_MARGIN, FinetuneJob
    job = FinetuneJob(FinetuneParams(), RunConfig(), tmp_path / "run")
    job._watched(0, 40.0, (33.8, 32.5))                         # the shipped gioada's figures: not flagged
    job._watched(10, 41.0, (30.0 + LABEL_MARGIN - 0.5, 30.0))
    assert job.snapshot().warning == ""
    job._watched(20, 41.0, (52.0, 31.0))
    warning = job.snapshot().warning
    assert "(step 20)" in warning and "mIoU 52.0 against them" in warning and "(31.0)" in warning
    assert "Collapse" not in warning and "--lam-content" in warning
    job._watched(30, 25.0, (55.0, 30.0))                        # then a collapse: both are said, each once
    both = job.snapshot().warning
    assert both.startswith(warning) and both.count("Label-painting") == 1 and "Collapse warning" in both


@pytest.mark.parametrize("over, message", [
    (dict(lam_input="NaN"), r"lam_input=nan is out of range: expected a number in \[0, 10\]"),
    (dict(lam_output="inf"), r"lam_output=inf is out of range"),
    (dict(lam_depth=-1), r"lam_depth=-1.0 is out of range"),
    (dict(lr="fast"), r"lr='fast' is not a number: expected a number in \[1e-06, 0.1\]"),
    (dict(lr=5), r"lr=5.0 is out of range"),
    (dict(steps=10**9), r"steps=1000000000.0 is out of range: expected an integer in \[1, 20000\]"),
    (dict(steps=2.5), r"steps=2.5 is not a whole number"),
    (dict(batch=0), r"batch_size=0.0 is out of range"),
    (dict(height=40), r"height=40 is invalid: expected a multiple of 16"),
    (dict(seed=-3), r"seed=-3.0 is out of range"),
    (dict(start_from="../assets/gioada"), r"unknown model"),
    (dict(run_name="../.."), r"has no letters or digits"),
])
def test_finetune_rejects_bad_parameters(served, over, message):
    _, client = served
    with pytest.raises(AppError, match=message):
        client.predict(*finetune_args(**over), api_name="/finetune")


def test_second_start_is_refused_stop_keeps_the_run_and_explore_never_waits(served, dirs):
    demo, client = served
    manager = demo.gioada["finetune"]
    job = client.submit(*finetune_args(steps=400, run_name="long"), api_name="/finetune")
    deadline = time.monotonic() + 60
    while not (manager.busy() and manager.current.snapshot().step >= 1):
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    assert client.predict(api_name="/finetune_status")["busy"] is True
    with pytest.raises(AppError, match="already in progress"):
        client.predict(*finetune_args(run_name="second"), api_name="/finetune")
    t = time.perf_counter()
    explore_ok(client)                                           # explore does not queue behind training
    assert time.perf_counter() - t < 30
    client.predict(api_name="/stop")
    progress = job.result(timeout=120)[0]
    assert "Stopped at step" in progress, progress
    info = read_json(dirs["runs"] / "long", "run.json")
    assert info["interrupted"] is True and info["steps_done"] < 400
    assert not (dirs["runs"] / "second").exists()


def test_pickled_checkpoint_is_refused_without_running_it(served, dirs, tmp_path):
    _, client = served
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = dirs["runs"] / "evil"
    evil.mkdir()
    (evil / "config.json").write_text((dirs["assets"] / "gioada" / "config.json").read_text())
    (evil / "model.safetensors").write_bytes(pickle.dumps({"weights": Payload()}))
    with pytest.raises(AppError, match="not a valid safetensors file"):
        client.predict("runs/evil", "", 1, 1.0, api_name="/explore")
    with pytest.raises(AppError, match="not a valid safetensors file"):
        client.predict(*finetune_args(start_from="runs/evil"), api_name="/finetune")
    torch.save({"weights": Payload()}, evil / "model.safetensors")    # a torch zip checkpoint: refused too
    with pytest.raises(AppError, match="not a valid safetensors file"):
        client.predict("runs/evil", "", 1, 1.0, api_name="/explore")
    assert not marker.exists()
    explore_ok(client)


def test_apply_preset_over_the_api(served):
    _, client = served
    from gioada.app.finetune import PRESETS
    assert tuple(client.predict("Input only", api_name="/apply_preset")) == PRESETS["Input only"]
    with pytest.raises(AppError, match="bogus"):
        client.predict("bogus", api_name="/apply_preset")


# ---------------------------------------------------------------------------------------------------
# The library behind it
# ---------------------------------------------------------------------------------------------------
def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6                                              # "rotate 90° clockwise to display"
    return png_bytes(Image.new("RGB", (60, 20), (200, 30, 30)), "JPEG", exif=exif.tobytes())


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height: a decompression bomb's calling card."""
    data = bytearray(png_bytes(Image.new("L", (16, 16))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("name, make, shape", [
    ("grayscale", lambda: png_bytes(Image.new("L", (40, 30), 90)), (30, 40, 3)),
    ("RGBA", lambda: png_bytes(Image.new("RGBA", (40, 30), (255, 0, 0, 0))), (30, 40, 3)),
    ("palette", lambda: png_bytes(Image.new("RGB", (40, 30), (0, 90, 200)).convert("P")), (30, 40, 3)),
    ("palette+transparency", lambda: png_bytes(Image.new("P", (40, 30)), "GIF", transparency=0), (30, 40, 3)),
    ("16-bit", lambda: png_bytes(Image.fromarray(np.full((30, 40), 65535, np.uint16))), (30, 40, 3)),
    ("32-bit float", lambda: png_bytes(Image.fromarray(np.linspace(0, 9, 1200, dtype=np.float32).reshape(30, 40)),
                                       "TIFF"), (30, 40, 3)),
    ("CMYK", lambda: png_bytes(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"), (30, 40, 3)),
    ("EXIF-rotated", _exif_rotated, (60, 20, 3)),
    ("huge JPEG", lambda: png_bytes(Image.new("L", (10000, 10000), 100), "JPEG", quality=50), None),
])
def test_uploads_are_converted(name, make, shape):
    image = load_upload(make())
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
    if shape:
        assert image.shape == shape, (name, image.shape)
    assert image.shape[0] * image.shape[1] <= WORK_PIXELS
    if name == "16-bit":
        assert image.min() == 255                                # scaled down, not clipped to garbage
    if name == "RGBA":
        assert (image == 128).all()                              # transparent -> neutral grey
    if name == "CMYK":
        assert image[0, 0, 0] > 200 and image[0, 0, 1] < 60      # red stays red
    if name == "EXIF-rotated":
        assert image.shape[0] > image.shape[1]                   # upright


@pytest.mark.parametrize("make, size", [(_exif_rotated, (20, 60)),
                                        (lambda: png_bytes(Image.new("L", (10000, 8000), 100), "JPEG"), (10000, 8000))])
def test_an_upload_says_the_photo_s_own_upright_size_though_it_is_read_smaller(dirs, tmp_path, make, size):
    from gioada.app.uploads import read_upload
    image, own = read_upload(make())
    assert own == size and (image.shape[1] > image.shape[0]) == (size[0] > size[1])
    title = Explorer(ModelRegistry(dirs["assets"], tmp_path / "runs", device="cpu")).upload(["gioada"], make()).title
    w, h = size
    assert f"Your image ({w}×{h}" in title
    assert (f"read at {image.shape[1]}×{image.shape[0]}" in title) == (image.shape[:2] != (h, w))


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"GIF89a-but-not-really", "not an image we can read"),
    (b"%PDF-1.4 a document", "not an image we can read"),
    (_png_claiming(10000, 10000), "too large to decode safely"),
    (_png_claiming(100000, 100000), "too large to decode safely"),
    (png_bytes(Image.new("RGB", (8, 300))), "too small"),
    (png_bytes(Image.new("RGB", (300, 300), (1, 2, 3)))[:-30], "truncated or corrupt"),
])
def test_uploads_are_refused_clearly(data, message):
    with pytest.raises(ValueError, match=message):
        load_upload(data)


def test_upload_size_limit_and_crop():
    with pytest.raises(ValueError, match="the limit is"):
        load_upload(b"x" * 2000, max_bytes=1000)
    assert fit_to(np.zeros((300, 400, 3), np.uint8), 32, 96).shape == (32, 96, 3)


@pytest.mark.parametrize("raw, name", [("../../etc/passwd", "etc-passwd"), ("My Run #1!", "my-run-1"),
                                        (".hidden", "hidden"), ("a/../../b", "a-b"), ("Ünïcódé run", "unicode-run"),
                                        ("x" * 300, "x" * 48), ("C:\\Windows\\..", "c-windows")])
def test_run_names_cannot_escape(raw, name):
    assert safe_run_name(raw) == name


def test_parameters_are_validated_in_the_library():
    for bad in [dict(lam_input=float("nan")), dict(lam_input=True), dict(lr=None), dict(steps="many"),
                dict(height=1e308 * 10), dict(seed=2**40), dict(bogus=1)]:
        with pytest.raises(ValueError):
            FinetuneParams.validated(**bad)
    assert check_number("x", " 0.5 ", 0, 1) == 0.5
    p = FinetuneParams.validated(lam_input="0.2", steps=3.0, height=64)
    assert (p.lam_input, p.steps, p.width) == (0.2, 3, 192)


class _Poison(Callback):
    """Turns the weights to NaN before the second step, as a diverging run would."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 1:
            self.good = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}  # after step 1
            with torch.no_grad():
                for p in pl_module.task_network.parameters():
                    p.fill_(float("nan"))


def test_divergence_stops_the_run_and_keeps_the_last_good_weights(dirs, tmp_path):
    registry = ModelRegistry(dirs["assets"], tmp_path / "runs", device="cpu")
    manager = FinetuneManager(registry, eval_scenes=2)
    job = manager.start(FinetuneParams(steps=5, batch_size=2, height=32, start_from="gioada", run_name="nan"),
                        callbacks=[poison := _Poison()])
    snap = job.wait(120)
    assert snap.state == "diverged" and "NaN/inf at step 2" in snap.message, snap.message
    run = tmp_path / "runs" / "nan"
    info = json.loads((run / "run.json").read_text())
    assert info["steps_done"] == 1 and "non-finite" in info["diverged"]
    model = load_model(run)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    saved = model.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in poison.good.items())     # exactly the weights after step 1
    assert math.isfinite(snap.after["miou"])


@pytest.mark.isa
def test_finetune_measures_the_start_as_it_predicts_and_the_result_at_its_own_crop(tmp_path):
    """A start trained on whole 64×192 frames is measured on whole frames; the fine-tune, trained on 32×96
    crops of them, predicts window by window at 32×96. Its reproduction command names every switch."""
    runs = tmp_path / "runs"
    cfg = RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8, lam_content=0.5,
                                      transform_depth=False),
                    data=DataConfig(height=64, width=192, batch_size=2, val_scenes=2), steps=2, val_every=2)
    train(cfg, runs / "wide", progress=False, eval_scenes=2)
    registry = ModelRegistry(tmp_path / "assets", runs, device="cpu")
    job = FinetuneManager(registry, eval_scenes=2).start(
        FinetuneParams(steps=2, batch_size=2, height=32, start_from="runs/wide", run_name="narrow"))
    snap = job.wait(120)
    assert snap.state == "done", snap.message
    assert snap.before["inference"] == "whole frame" and snap.after["inference"] == "windows of 32×96"
    start = load_model(runs / "wide")
    assert snap.before["miou"] == pytest.approx(evaluate(start, load_run_config(runs / "wide").data, "target", 2)["miou"])
    command = json.loads((runs / "narrow" / "run.json").read_text())["command"]
    assert "--lam-content 0.5" in command and "--no-transform-depth" in command
    assert "--no-output-disc-depth" not in command


def test_runs_dir_may_not_be_the_shipped_models(dirs):
    with pytest.raises(ValueError, match="shipped models"):
        ModelRegistry(dirs["assets"], dirs["assets"])
    with pytest.raises(ValueError, match="shipped models"):
        ModelRegistry(dirs["assets"], dirs["assets"] / "gioada")


def test_explore_runs_a_model_without_g_once_per_image(dirs, tmp_path):
    """Without G the translation is the source itself: T sees it once, and every figure is still T's own."""
    from gioada.data.synthetic import image_to_tensor
    from gioada.inference import cpu_bf16, predicted_classes
    from gioada.metrics import image_miou
    explorer = Explorer(ModelRegistry(dirs["assets"], tmp_path / "runs", device="cpu"))
    model = explorer.registry.load("source-only")
    seen = []
    hook = model.task_network.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    try:
        view = explorer.scene(["source-only"], 3, 1.0).models[0]
    finally:
        hook.remove()
    assert sum(seen) == 2                                       # the source and the target, once each
    assert view.d_in["source"] == view.d_in["translated"] and view.d_out["source"] == view.d_out["translated"]
    source, target, _ = explorer.scenes.get(3, 1.0, 32, 64)
    with torch.no_grad(), cpu_bf16(torch.device("cpu"), explorer.bf16):     # as Explore computes on this CPU
        logits = model(torch.stack([image_to_tensor(source.image), image_to_tensor(target.image)]))[0]
    pred = predicted_classes(logits.float())
    for i, (sample, figure) in enumerate([(source, view.miou_source), (target, view.miou_target)]):
        assert figure == pytest.approx(100 * image_miou(pred[i], torch.from_numpy(sample.labels.astype(np.int64)), 10))


def test_bf16_views_keep_every_figure_within_half_a_point(tmp_path):
    """Explore in bf16 (where the CPU has it natively) shows the shipped models' scenes as float32 does: each
    per-scene mIoU within 0.5 points, the prediction the same on 99% of the pixels, the translation within a
    grey level on average, D_in's verdicts within 0.05."""
    registry = ModelRegistry(Path(__file__).parents[1] / "assets", tmp_path / "runs", device="cpu")
    fp32, bf16 = Explorer(registry, bf16=False), Explorer(registry, bf16=True)
    for index in (0, 5):
        a, b = fp32.scene(["gioada", "source-only"], index, 1.0), bf16.scene(["gioada", "source-only"], index, 1.0)
        for va, vb in zip(a.models, b.models):
            assert abs(va.miou_target - vb.miou_target) <= 0.5 and abs(va.miou_source - vb.miou_source) <= 0.5
            assert (va.labels_raw == vb.labels_raw).mean() >= 0.99
            assert np.abs(va.translation.astype(float) - vb.translation.astype(float)).mean() <= 1.0   # of 255
            assert all(abs(va.d_in[k] - vb.d_in[k]) <= 0.05 for k in va.d_in)


def test_bf16_is_used_only_where_the_cpu_computes_it_natively():
    from gioada.inference import native_bf16
    amd = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n"
    older = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
    assert native_bf16(amd, "") and native_bf16(amd, "avx512_core_bf16") and native_bf16(amd, "DEFAULT")
    assert not native_bf16(older, "")                              # oneDNN would emulate it: float32
    assert not native_bf16(amd, "AVX512_CORE") and not native_bf16(amd, "AVX2")   # capped below bf16
    assert native_bf16("processor\t: 0\nflags\t\t: avx512f amx_bf16 amx_tile\n", "")
    assert not native_bf16("", "")


def test_no_models_installed_still_explores_and_trains(tmp_path):
    registry = ModelRegistry(tmp_path / "empty-assets", tmp_path / "runs", device="cpu")
    result = Explorer(registry).scene(["", ""], 0, 1.0)
    assert result.models == [] and "No trained model" in result.notes[0]
    assert result.strip.shape[2] == 3 and result.strip.shape[1] > 4 * 384     # source, target, truth, depth


def test_first_view_is_drawn_on_load_not_at_build(served):
    """Building the app renders no scene and no diagram (a fast start); a page load fills them."""
    demo, client = served
    props = {c["props"].get("elem_id"): c["props"] for c in demo.config["components"]}
    assert not props["scene-gallery"].get("value") and not props["diagram"].get("value")
    gallery = client.predict(api_name="/scene_gallery")
    assert len(gallery) == explore_tab.GALLERY_SCENES and all(Path(item["image"]).is_file() for item in gallery)
    assert Image.open(client.predict(api_name="/diagram")).size[0] > 400


def test_building_the_app_does_not_import_torch(tmp_path):
    """The server answers before torch has loaded (a fast start): importing the app and building it leave
    torch unimported, in a fresh interpreter; the first look at the device imports it."""
    script = ("import sys, app\n"
              f"demo = app.build_demo(runs_dir={str(tmp_path)!r})\n"
              "print('torch' in sys.modules, 'pytorch_lightning' in sys.modules)\n"
              "demo.gioada['registry'].device\n"
              "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(app.__file__).parent, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False", "True"]


def test_device_is_named_on_page_load(served):
    demo, client = served
    hero, note = client.predict(api_name="/device")
    device = "GPU" if torch.cuda.is_available() else "CPU"
    assert f'"gio-pill">{device}<' in hero and "2 of 8 shipped models installed" in hero   # the fixture's two
    assert note.startswith(f"**Device: {device}**")


def test_diagram_greys_out_switched_off_parts():
    full, none = render_diagram(0.05, 0.01, 0.5), render_diagram(0.0, 0.0, 0.0)
    assert full.shape == none.shape and full.shape[2] == 3

    def red(im: np.ndarray) -> int:  # pixels in the discriminators' colour
        return int(((im[..., 0] > 150) & (im[..., 1] < 60) & (im[..., 2] < 80)).sum())

    assert red(full) > 1000 and red(none) < red(full) // 20


def test_curves_show_every_logged_term():
    history = [{"step": i, "train/g_seg": 2 / i, "train/g_adv_in": 0.7, "train/loss_d_in": 1.38,
                "train/d_in_real": 0.5 + 0.01 * i, "train/d_in_fake": 0.5 - 0.01 * i} for i in range(1, 40)]
    losses = curve_frame(history, LOSS_SERIES).dropna()
    assert set(losses["series"]) == {"seg", "adv_in", "D_in"}
    confidences = curve_frame(history, CONFIDENCE_SERIES, chance=True).dropna()
    assert set(confidences["series"]) == {"D_in · target", "D_in · G(src)", CHANCE}
    chance = confidences[confidences["series"] == CHANCE]
    assert list(chance["step"]) == [1, 39] and list(chance["value"]) == [0.5, 0.5]   # across the steps drawn
    # Every series is in every table (NaN until it has points): the browser keeps the legend of the first one.
    empty = curve_frame([], CONFIDENCE_SERIES, chance=True)
    assert set(empty["series"]) == set(CONFIDENCE_SERIES.values()) | {CHANCE} and empty["value"].isna().all()
    assert set(curve_frame(history, LOSS_SERIES)["series"]) == set(LOSS_SERIES.values())
    assert str(empty["step"].dtype) == "int64"        # a numeric axis from the first (empty) table on


def test_watched_run_sends_only_what_changed():
    """A watched run's updates skip what the page already shows; the last one is whole (for API callers)."""
    history = [{"step": 1, "train/g_seg": 1.0, "train/d_in_real": 0.6}]
    preview, before = np.zeros((4, 4, 3), np.uint8), {"miou": 10.0, "scenes": 2, "per_class_iou": {}}
    first = _snapshot(state="training", step=1, history=history, preview=preview, before=before)
    same = _snapshot(state="training", step=2, history=history, preview=preview, before=before)
    values = finetune_tab.finetune_values(same, first, plots=False)
    assert "step <b>2</b>" in values[0]
    assert all(v == gr.skip() for v in values[1:]), values[1:]
    values = finetune_tab.finetune_values(same, None, plots=True)
    assert values[3] is preview and "10.0%" in values[4]
    losses, confidences = (frame.dropna() for frame in values[1:3])
    assert list(losses["series"]) == ["seg"] and set(confidences["series"]) == {"D_in · target", CHANCE}


def _snapshot(**fields):
    base = dict(version=0, state="training", run_name="r", step=0, total=10, elapsed=1.0, steps_per_second=None,
                eta_seconds=None, history=[], preview=None, message="", before=None, after=None, run_key=None,
                params=FinetuneParams())
    return Snapshot(**{**base, **fields})


class _OutOfMemory(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_is_reported_with_advice(dirs, tmp_path):
    manager = FinetuneManager(ModelRegistry(dirs["assets"], tmp_path / "runs", device="cpu"), eval_scenes=2)
    snap = manager.start(TINY, callbacks=[_OutOfMemory()]).wait(120)
    assert snap.state == "oom" and "smaller batch size or image size" in snap.message, snap.message
    assert not manager.busy() and not any((tmp_path / "runs").iterdir())   # nothing half-saved; next Start works


def test_the_guided_tour_numbers_each_step_once(served):
    demo, _ = served
    names = {t[0] for t in learn_tab.TOUR}
    labels = [b.value for b in demo.blocks.values()
              if isinstance(b, gr.Button) and (b.value in names or "Train it yourself" in str(b.value))]
    numbers = [label.split(" · ")[0] for label in labels]
    assert len(labels) == len(learn_tab.TOUR) + 1 and sorted(numbers) == [str(k) for k in range(1, len(labels) + 1)]


def test_the_tour_shows_two_seeds_of_the_same_settings_side_by_side(dirs, tmp_path):
    import shutil
    assets = tmp_path / "assets"
    shutil.copytree(dirs["assets"], assets)
    k = next(i for i, t in enumerate(learn_tab.TOUR) if "another seed" in t[0])
    _, a, b, shift, scene, text, _ = learn_tab.tour_step(ModelRegistry(assets, tmp_path / "runs"), k)
    assert b.value == "gioada" and "Not installed here: gioada-seed1" in text          # what there is instead
    shutil.copytree(assets / "gioada", assets / "gioada-seed1")
    _, a, b, shift, scene, text, _ = learn_tab.tour_step(ModelRegistry(assets, tmp_path / "runs"), k)
    assert (a.value, b.value, shift) == ("gioada-seed1", "gioada", 1.0) and "Not installed" not in text


def test_the_shipped_second_seed_is_the_collapse_the_tour_says_it_is():
    """The tour step says gioada-seed1 collapsed: by the one rule, its held-out mIoU lies more than
    COLLAPSE_MARGIN below gioada's (seed 0), with the same settings."""
    import json

    from gioada.constants import ASSETS, COLLAPSE_MARGIN
    runs = {n: ASSETS / n for n in ("gioada", "gioada-seed1")}
    if not all((p / "metrics.json").is_file() for p in runs.values()):
        pytest.skip("the shipped models are not in this checkout")
    from dataclasses import replace

    from gioada.checkpoint import load_run_config
    miou = {n: json.loads((p / "metrics.json").read_text())["target"]["miou"] for n, p in runs.items()}
    config = {n: load_run_config(p) for n, p in runs.items()}
    assert miou["gioada-seed1"] < miou["gioada"] - COLLAPSE_MARGIN
    assert (config["gioada"].seed, config["gioada-seed1"].seed) == (0, 1)
    a, b = (replace(c, seed=0, model=replace(c.model, seed=0)) for c in config.values())
    assert a == b                                                   # every other setting the same


def test_a_finetune_starts_from_the_best_adapted_shipped_model(served, dirs, tmp_path):
    import json
    import shutil
    demo, _ = served
    [start] = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and b.label == "Start from"
               and "best adapted" in (b.info or "")]
    assert start.value == "gioada"                         # source-only does not adapt
    assets = tmp_path / "assets"
    shutil.copytree(dirs["assets"], assets)
    shutil.copytree(assets / "gioada", assets / "output-only")
    for name, miou in (("gioada", 30.0), ("output-only", 40.0), ("source-only", 90.0)):
        path = assets / name / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["target"]["miou"] = miou
        path.write_text(json.dumps(metrics))
    assert ModelRegistry(assets, tmp_path / "runs").best_adapted() == "output-only"
    assert ModelRegistry(tmp_path / "none", tmp_path / "runs").best_adapted() is None


def test_opening_the_learn_tab_shows_the_start_at_step_0(served):
    _, client = served
    out = client.predict("", 0.1, 0.1, 0.5, 1e-3, 1.0, api_name="/lab_arrive")
    card = out[0]
    assert 'data-steps="0"' in card, card[:200]
    assert all(o is not None for o in out[1:4]), out[1:4]             # the three image panels are drawn
    again = client.predict("", 0.1, 0.1, 0.5, 1e-3, 1.0, api_name="/lab_arrive")
    assert again[0] == {"__type__": "update", "props": {"__type__": "update"}}   # this visitor's lab is kept


def test_a_scene_seen_again_is_served_from_a_bounded_cache_of_views(dirs, tmp_path, monkeypatch):
    import os
    import shutil
    import time

    from gioada.app.explore import Explorer
    assets = tmp_path / "assets"
    shutil.copytree(dirs["assets"], assets)
    explorer = Explorer(ModelRegistry(assets, tmp_path / "runs", device="cpu"))
    first = explorer.scene(["gioada"], 3, 1.0)
    calls = []
    render = explorer._render_scene
    monkeypatch.setattr(explorer, "_render_scene", lambda *a: calls.append(a) or render(*a))
    assert explorer.scene(["gioada"], 3, 1.0) is first and calls == []          # no network ran
    assert explorer.scene(["gioada"], 3, 0.5) is not first and len(calls) == 1   # another shift is another view
    os.utime(assets / "gioada" / "model.safetensors", ns=(time.time_ns() + 10**9,) * 2)   # the model saved again
    assert explorer.scene(["gioada"], 3, 1.0) is not first and len(calls) == 2
    monkeypatch.setattr(Explorer, "CACHE_SIZE", 2)
    for index in range(5):
        explorer.scene(["gioada"], index, 1.0)
    assert len(explorer._views) == 2


def test_starting_params_take_the_best_adapted_models_row_and_keep_the_rest(dirs, tmp_path):
    from gioada.app.finetune import FinetuneManager, FinetuneParams, preset_named
    manager = FinetuneManager(ModelRegistry(dirs["assets"], tmp_path / "runs", device="cpu"))
    params = manager.starting_params(FinetuneParams(steps=7))
    assert (params.start_from, params.lam_input, params.lam_output, params.steps) == ("gioada", 0.1, 0.1, 7)
    assert preset_named(0.0, 0.0, 0.5) == "No adaptation" and preset_named(0.1, 0.1, 0.5) is None
    empty = FinetuneManager(ModelRegistry(tmp_path / "none", tmp_path / "runs", device="cpu"))
    assert empty.starting_params(FinetuneParams(steps=7)) == FinetuneParams(steps=7)
