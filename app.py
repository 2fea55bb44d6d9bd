"""The gioada app: explore domain shift, watch the discriminators, fine-tune and learn GIO-Ada in a browser.

    python app.py                      # http://127.0.0.1:7860, the shipped models in assets/ and runs in runs/
    python app.py --source vkitti2:/data/vkitti2 --target kitti:/data/kitti   # explore datasets on disk

Every event has an ``api_name``, so the app can be scripted with ``gradio_client``::

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    outputs = client.predict("gioada", "source-only", 3, 1.0, api_name="/explore")  # model A, model B, scene, shift

This file only lays out widgets and wires them to gioada: ``gioada.app.explore`` (Explore), ``gioada.app.finetune``
(fine-tuning runs), ``gioada.app.lab`` (the live lab), ``gioada.app.plots`` and ``gioada.app.diagram``; its HTML
cards are in ``app_html.py``.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import logging
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr
import pandas as pd
from starlette.middleware import Middleware

from app_html import hero_html, lab_html, legend_html, progress_html, result_html, stats_html
from gioada.allocator import keep_freed_memory
from gioada.config import DataConfig
from gioada.app.explore import Explorer, ExploreResult, raw_downloads
from gioada.app.finetune import (PRESETS, PREVIEW_SECONDS, FinetuneJob, FinetuneManager, FinetuneParams,
                                 RunInProgress, Snapshot, device_note, per_class_rows, preset, preset_named)
from gioada.app.lab import (DEFAULT_START, LAB_BATCH, LAB_CROP, LAB_PRESETS, LabPool, LabSettings, LabView,
                            lab_preset, translation_pair)
from gioada.app.plots import CONFIDENCE_COLORS, CONFIDENCE_SERIES, LOSS_COLORS, LOSS_SERIES, curve_frame
from gioada.pretrained import ASSETS, SHIPPED
from gioada.app.registry import ModelRegistry
from gioada.app.scenes import MAX_SCENE, DatasetScenes, SceneSource
from gioada.app.validation import LIMITS
from gioada.app.serving import (ALLOWED_HOSTS_ENV, FOREGROUND, SLOT, ComputeThread, HostCheck, OnComputeThread,
                                allowed_hosts, scrub_paths)
from gioada.app.uploads import MAX_UPLOAD_BYTES

log = logging.getLogger("gioada.app")

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="teal", neutral_hue="slate",
                       font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "monospace"])
CSS = """
.gio-hero {padding: 18px 22px; border-radius: 14px; color: white;
           background: linear-gradient(120deg, #312e81 0%, #4f46e5 45%, #0f766e 100%);}
.gio-hero h1 {margin: 0 0 4px 0; font-size: 26px; color: white;}
.gio-hero p {margin: 0; color: #eef0ff !important; font-size: 14.5px; max-width: 980px;}
.gio-pill {display: inline-block; margin: 10px 8px 0 0; padding: 3px 10px; border-radius: 999px;
           background: rgba(255,255,255,.18); color: white; font-size: 12.5px;}
.gio-help {color: #556; font-size: 13px;}
.gio-card {border: 1px solid #e3e6ef; border-radius: 12px; padding: 10px 12px; background: #fcfcfe;}
.gio-progress.idle {color: #667; font-size: 13.5px; padding: 8px 0;}
footer {display: none !important;}
"""
MAX_FILE_SIZE = f"{MAX_UPLOAD_BYTES // 2**20}mb"
GALLERY_SCENES = 6               # thumbnails of held-out scenes 0..5 in Explore's gallery
# Explore calls let in at once. They compute one by one on the compute thread; OnComputeThread answers any
# beyond its max_waiting with "busy, try again" at once, so none waits long in Gradio's queue instead.
EXPLORE_CONCURRENCY = 16
NONE, SCRATCH = ("— none —", ""), ("Scratch (random weights)", "")
QUEUE_SIZE = 64                  # requests waiting, at most; more are turned away at once
PER_CLASS_HEADERS = ["class", "IoU before (%)", "IoU after (%)", "change"]
# A watched run's page: the progress card at most every UPDATE_SECONDS, the curves every PLOT_SECONDS. Each
# update costs the browser and the server CPU time the run would use (bench/bench_browser.py watched).
UPDATE_SECONDS = 1.5
PLOT_SECONDS = 4.5


# The guided tour: (button, text, model A preferences, model B preferences, shift).
TOUR = [
    ("1 · The domain gap",
     "**Source-only** was trained on synthetic images only. Compare its mIoU on the *source* and the *target* "
     "rendering of the same scene: the drop is the domain gap. The **oracle** (trained on target labels, "
     "which adaptation may never use) shows what is possible.",
     ["source-only"], ["oracle", "gioada"], 1.0),
    ("2 · Dial the shift",
     "The shift slider sets how far the target domain is from the source (0 = identical, 2 = severe). "
     "Drag it and watch source-only fall apart while GIO-Ada holds up better.",
     ["source-only"], ["gioada"], 2.0),
    ("3 · The input adversary",
     "**Input-only** adds G and D_in. Look at the *translation* column: G repaints the synthetic image in the "
     "target style (texture, haze, colour) while keeping its layout, so T learns on real-looking images with "
     "the source labels. D_in's bars show how well it still tells translations from real images: adversarial "
     "training pushes both toward 50% (chance). Compare the translation's bar with the target's to see how "
     "far the shipped G got: part of the way, not all of it.",
     ["input-only", "gioada"], ["source-only"], 1.0),
    ("4 · Output adversary and depth",
     "The **full method** adds D_out, which judges T's outputs (segmentation + depth) on real vs translated "
     "images, and uses depth throughout. Compare it with the **no-depth** ablation.",
     ["gioada"], ["no-depth", "output-only", "source-only"], 1.0),
    ("5 · Keep the content",
     "G sees the label map, so it can paint classes in colours T learns to read, colours that real images "
     "never have. **gioada-content** adds one loss that keeps G's translation close to its input "
     "(not in the paper). Compare its translation and segmentation with **gioada**'s.",
     ["gioada-content"], ["gioada", "output-only"], 1.0),
]

EXPLAIN = """
### How GIO-Ada works
A segmentation network **T** trained on synthetic images (where labels and depth are free) does poorly on
real images: the **domain gap**. GIO-Ada (Chen et al., CVPR 2019) closes it *without target labels*, at
two levels, guided by geometry:

- **Input level.** An image transform network **G** turns a source image, *given its labels and depth*,
  into a target-looking image x̃ₛ. The discriminator **D_in** tries to tell x̃ₛ from real target images,
  and G learns to fool it. T is trained on x̃ₛ with the source labels.
- **Output level.** A second discriminator **D_out** judges T's outputs — class probabilities *and* depth
  together — on translated vs real images, so T's predictions on real images come to look like its
  supervised ones.
- **Geometry.** T also predicts depth (an auxiliary L1 loss weighted by λ_depth, used in training only);
  G and D_out see depth, a signal that transfers well between domains.

Every training step updates the discriminators first (**D step**), then G and T (**G step**) with the
adversarial labels flipped. Training has converged when both discriminators answer about **50%**
(chance) for everything. λ_in = λ_out = 0 is the no-adaptation baseline; λ_depth = 0 drops T's depth loss
(the `no-depth` model also takes depth away from G and D_out). `gioada-content` adds a content constraint
that is not in the paper: G also keeps its translation close to its input (mean |G(xₛ) − xₛ|, weighted by
λ_content).

The shipped models see 128×384 frames; they trained on random 64×192 crops and predict a whole frame
window by window at that size.
"""


# ---------------------------------------------------------------------------------------------------
# Errors: the library raises ValueError (bad input) and RunInProgress; the browser gets gr.Error
# messages, never a traceback.
# ---------------------------------------------------------------------------------------------------
def _message(e: Exception) -> gr.Error:
    if isinstance(e, (ValueError, RunInProgress, FileNotFoundError)):
        return gr.Error(scrub_paths(str(e)), print_exception=False)
    log.exception("unexpected error in an app callback")
    return gr.Error("Something went wrong on the server (it has been logged). Please try again.",
                    print_exception=False)


def _check_arguments(fn: Callable, args: tuple, kwargs: dict) -> None:
    """An API call with the wrong number of inputs gets a message naming the inputs expected."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        names = [p for p in inspect.signature(fn).parameters]
        raise gr.Error(f"this endpoint takes {len(names)} inputs ({', '.join(names)}), got {len(args) + len(kwargs)}",
                       print_exception=False) from None


def _check_input_count(block_fn: Any, inputs: list[Any]) -> None:
    """Gradio's own check of the number of inputs, with a message an API caller can act on."""
    if len(inputs) != len(block_fn.inputs):
        names = [getattr(b, "label", None) or type(b).__name__ for b in block_fn.inputs]
        raise gr.Error(f"/{block_fn.api_name or block_fn.name} takes {len(names)} inputs ({', '.join(map(str, names))}), "
                       f"got {len(inputs)}", print_exception=False)


def friendly(fn: Callable) -> Callable:
    """Turn library errors into gr.Error messages (works for plain functions and generators)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any):
            _check_arguments(fn, args, kwargs)
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001 - mapped to a message; unexpected ones are logged in full
                raise _message(e) from None
        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        _check_arguments(fn, args, kwargs)
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - mapped to a message; unexpected ones are logged in full
            raise _message(e) from None
    return call


# ---------------------------------------------------------------------------------------------------
# The app: one function per tab (its widgets and its own events), then the events that cross tabs
# ---------------------------------------------------------------------------------------------------
def build_demo(assets_dir: str | Path = ASSETS, runs_dir: str | Path = "runs", *,
               scenes: SceneSource | None = None, data: DataConfig | None = None, eval_scenes: int = 24,
               defaults: FinetuneParams = FinetuneParams(height=64)) -> gr.Blocks:
    """The whole app. ``assets_dir``/``runs_dir`` say where shipped models and saved runs live; ``scenes``
    and ``data`` switch Explore and fine-tuning from the simulator to datasets on disk."""
    registry = ModelRegistry(assets_dir, runs_dir)
    compute = ComputeThread()          # every torch computation on one thread: runs' steps take turns with the rest
    explorer = OnComputeThread(Explorer(registry, scenes), compute)
    manager = FinetuneManager(registry, data=data, eval_scenes=eval_scenes, compute=compute)

    with gr.Blocks(title="GIO-Ada lab", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        hero = gr.HTML(hero_html(len(registry.shipped()), len(SHIPPED), explorer.scenes.kind))
        with gr.Tabs(selected="explore") as tabs:
            with gr.Tab("Explore", id="explore"):
                ex = _explore_tab(explorer)
            with gr.Tab("Fine-tune", id="finetune"):
                ft = _finetune_tab(manager, defaults)
            with gr.Tab("Learn", id="learn") as learn_page:
                learn = _learn_tab(manager, data, defaults)
        learn_page.select(**learn.arrive, api_name="lab_arrive")
        first_view = _wire_model_lists(demo, registry, ex, ft, learn)
        _wire_first_view(demo, registry, compute, explorer.scenes.kind, hero, ex, ft, learn, first_view)
        _wire_tour(tabs, registry, manager.has_depth, ex, ft, learn)

    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=2)
    demo.gioada = {"registry": registry, "explorer": explorer, "finetune": manager}  # for tests and scripts
    return demo


@dataclass
class _ExploreTab:
    """The Explore widgets that other tabs drive, and its explore event (to chain after theirs)."""

    model_a: gr.Dropdown
    model_b: gr.Dropdown
    scene: gr.Number
    shift: gr.Slider
    model_info: gr.Markdown
    tour_box: gr.Markdown
    refresh: gr.Button
    gallery: gr.Gallery
    explore: dict[str, Any]      # keyword arguments of the explore event
    describe: Callable[[str, str], str]
    thumbnails: Callable[[], list[Any]]


def _explore_tab(explorer: Explorer) -> _ExploreTab:
    registry = explorer.registry
    first_a, first_b = _default_models(registry.keys())
    choices = registry.choices()
    gr.Markdown("Pick a built-in scene (or upload a photo) and up to two models: see how each translates, "
                "segments and judges the same scene, and how close its discriminators are to chance.",
                elem_classes="gio-help")
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=380):
            gr.Markdown("**Scenes** held out from training — click one", elem_classes="gio-help")
            # Filled on page load (see _wire_first_view): the server answers sooner.
            gallery = gr.Gallery(None, label="Built-in scenes", show_label=False, columns=3,
                                 rows=2, height=252, allow_preview=False, object_fit="cover", buttons=[],
                                 elem_id="scene-gallery")
        with gr.Column(scale=3, min_width=280):
            with gr.Row(equal_height=True):
                scene = gr.Number(0, label="Scene #", precision=0, minimum=0, maximum=MAX_SCENE, scale=2,
                                  min_width=100)
                random_btn = gr.Button("Random scene", scale=1, min_width=100, size="sm")
            shift = gr.Slider(0, 2, value=1.0, step=0.05, label="Domain shift strength",
                              info="0: target = source · 1: default · 2: severe")
        with gr.Column(scale=3, min_width=280):
            # Choices change as runs are saved: the registry, not the dropdown, validates a key.
            model_a = gr.Dropdown(choices, value=first_a, label="Model A", allow_custom_value=True,
                                  info="shipped models and your saved runs")
            model_b = gr.Dropdown([NONE] + choices, value=first_b, label="Compare with (model B)",
                                  allow_custom_value=True)
        with gr.Column(scale=2, min_width=200):
            run_btn = gr.Button("Run", variant="primary", elem_id="explore-run")
            upload = gr.UploadButton("Upload your own photo", file_types=["image"], type="binary",
                                     variant="secondary")
            refresh_btn = gr.Button("↻ Refresh model list", size="sm")
    model_info = gr.Markdown(elem_classes="gio-help")
    tour_box = gr.Markdown(visible=False, elem_classes="gio-card", elem_id="tour-box")
    scene_md = gr.Markdown(elem_id="scene-title")
    # Few images, as JPEG: each one costs an encode on the server and a fetch and decode in the browser.
    scene_strip = _image("Source, target, ground truth and ground-truth depth", "scene-strip")
    gr.HTML(legend_html(explorer.scenes.space))
    a_col, a_out = _model_row("A")
    b_col, b_out = _model_row("B")
    notes_md = gr.Markdown()
    outputs = [scene_md, scene_strip, a_col, *a_out, b_col, *b_out, notes_md]
    space = explorer.scenes.space

    @friendly
    def explore(a: str, b: str, index: Any, strength: Any) -> list[Any]:
        return _explore_values(explorer.scene([a, b], index, strength), space, f"scene{index}")

    @friendly
    def explore_picked(a: str, b: str, strength: Any, evt: gr.EventData) -> list[Any]:
        # One event per gallery click (not a select, then an explore): one round trip fewer. gr.EventData, not
        # gr.SelectData: an API call without the click's data then reaches this check instead of failing
        # inside Gradio.
        data = evt._data if isinstance(evt._data, dict) else {}
        index = data.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError("no scene was picked: click a scene in the gallery (or call /explore with a scene number)")
        return [index, *_explore_values(explorer.scene([a, b], index, strength), space, f"scene{index}")]

    @friendly
    def explore_photo(data: bytes | None, a: str, b: str) -> list[Any]:
        if data is None:
            raise ValueError("no file was received: please choose an image to upload")
        return _explore_values(explorer.upload([a, b], data), space, "upload")

    @friendly
    def describe(a: str, b: str) -> str:
        lines = [f"**{k}** — {registry.describe(k)}" for k in (a, b) if k]
        lines += [f"*Not offered: {reason}*" for _, reason in registry.broken()]
        return "  \n".join(lines)

    # preprocess=False: raw values reach the library, which validates them (API calls skip the sliders'
    # bounds, and its messages name the valid range).
    explore_kw = dict(fn=explore, inputs=[model_a, model_b, scene, shift], outputs=outputs,
                      concurrency_id="explore", concurrency_limit=EXPLORE_CONCURRENCY, preprocess=False)
    run_btn.click(**explore_kw, api_name="explore")
    scene.submit(**explore_kw, api_name="explore_scene_number")
    shift.release(**explore_kw, api_name="explore_shift")
    random_btn.click(lambda: random.randrange(MAX_SCENE), outputs=scene, api_name="random_scene").then(
        **explore_kw, api_name="explore_random")
    gallery.select(explore_picked, [model_a, model_b, shift], [scene, *outputs], api_name="explore_picked",
                   concurrency_id="explore", concurrency_limit=EXPLORE_CONCURRENCY)
    for dd, name in ((model_a, "a"), (model_b, "b")):
        dd.input(**explore_kw, api_name=f"explore_model_{name}").then(
            describe, [model_a, model_b], model_info, api_name=f"describe_{name}")
    upload.upload(explore_photo, [upload, model_a, model_b], outputs, api_name="explore_upload",
                  concurrency_id="explore", concurrency_limit=EXPLORE_CONCURRENCY)
    return _ExploreTab(model_a, model_b, scene, shift, model_info, tour_box, refresh_btn, gallery, explore_kw,
                       describe, functools.cache(functools.partial(explorer.gallery, GALLERY_SCENES)))


@dataclass
class _FinetuneTab:
    """The Fine-tune widgets that other tabs drive, and the run's event (to refresh the model lists after it)."""

    device: gr.Markdown          # which device runs train on: filled on page load
    preset: gr.Radio
    lambdas: list[gr.Slider]     # λ_in, λ_out, λ_depth
    start_from: gr.Dropdown
    run: gr.events.Dependency


def _finetune_tab(manager: FinetuneManager, defaults: FinetuneParams) -> _FinetuneTab:
    has_depth = manager.has_depth          # False for GTA5: the depth loss is off, and the sliders say so
    defaults = manager.starting_params(defaults)      # the best adapted shipped model, at its row's lambdas
    device_md = gr.Markdown(elem_classes="gio-help")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            preset_radio = gr.Radio(list(PRESETS), value=preset_named(defaults.lam_input, defaults.lam_output,
                                                                      defaults.lam_depth), label="Preset",
                                    info="the paper's ablation, as lambda settings")
            lam_input = gr.Slider(0, 0.5, value=defaults.lam_input, step=0.005, label="λ_in",
                                  info="input-level adversary (G vs D_in)")
            lam_output = gr.Slider(0, 0.1, value=defaults.lam_output, step=0.001, label="λ_out",
                                   info="output-level adversary (T vs D_out)")
            lam_depth = gr.Slider(0, 2, value=defaults.lam_depth if has_depth else 0.0, step=0.05,
                                  label="λ_depth", interactive=has_depth,
                                  info="depth loss; also feeds depth to G and D_out" if has_depth else
                                  "off: the source dataset has no depth")
            with gr.Accordion("Training settings", open=True):
                lr = gr.Slider(0.0001, 0.01, value=defaults.lr, step=0.0001, label="Learning rate")
                steps = gr.Slider(1, 2000, value=defaults.steps, step=1, label="Steps")
                with gr.Row():
                    batch = gr.Slider(1, 32, value=defaults.batch_size, step=1, label="Batch size")
                    height = gr.Slider(32, 256, value=defaults.height, step=16, label="Image height",
                                       info="width = 3 × height")
                with gr.Row():
                    seed = gr.Number(defaults.seed, label="Seed", precision=0, minimum=0, maximum=LIMITS["seed"][1])
                    run_name = gr.Textbox(label="Run name", placeholder="optional, e.g. my-first-run")
                start_from = gr.Dropdown([SCRATCH] + manager.registry.choices(), value=defaults.start_from,
                                         label="Start from",
                                         allow_custom_value=True,
                                         info="the best adapted shipped model by default; choose scratch to train "
                                         "from random weights")
            with gr.Row():
                start_btn = gr.Button("▶ Start fine-tuning", variant="primary", scale=2)
                stop_btn = gr.Button("■ Stop", variant="stop", scale=1)
        with gr.Column(scale=2):
            progress = gr.HTML(progress_html(None), elem_classes="gio-card", elem_id="ft-progress")
            loss_plot, conf_plot = _plots("loss-plot", "conf-plot")     # stacked: each legend gets the width
            gr.Markdown(PLOTS_HELP, elem_classes="gio-help")
            gr.Markdown(f"**Preview** — a fixed held-out scene, refreshed every {PREVIEW_SECONDS:.0f} s of training "
                        "and at the end", elem_classes="gio-help")
            preview = gr.Image(label="Preview", show_label=False, interactive=False, format="jpeg",
                               buttons=["fullscreen"], elem_id="ft-preview")
            result = gr.HTML(elem_id="ft-result")
            per_class = gr.Dataframe(headers=PER_CLASS_HEADERS, label="Per-class IoU on held-out target scenes",
                                     interactive=False)

    @friendly
    def finetune(lam_in, lam_out, lam_d, rate, n_steps, batch_size, h, sd, start, name):  # noqa: ANN001
        params = FinetuneParams.validated(lam_input=lam_in, lam_output=lam_out, lam_depth=lam_d, lr=rate,
                                          steps=n_steps, batch_size=batch_size, height=h, seed=sd,
                                          start_from=start or "", run_name=name or "")
        yield from _stream(manager.start(params))

    @friendly
    def apply_preset(name: str) -> tuple[float, float, float]:
        return preset(name, has_depth)

    def stop() -> str:
        manager.stop()
        return progress_html(manager.current.snapshot() if manager.current else None)

    def status() -> dict[str, Any]:
        return manager.status()

    preset_radio.input(apply_preset, preset_radio, [lam_input, lam_output, lam_depth], api_name="apply_preset")
    run = start_btn.click(finetune, [lam_input, lam_output, lam_depth, lr, steps, batch, height, seed, start_from,
                                     run_name],
                          [progress, loss_plot, conf_plot, preview, result, per_class], api_name="finetune",
                          concurrency_id="train", concurrency_limit=8, preprocess=False,
                          # The progress card says how the run goes; Gradio's loading animation over six outputs
                          # kept the browser busy for the whole run, on the CPU the run trains on.
                          show_progress="hidden")
    stop_btn.click(stop, None, progress, api_name="stop", concurrency_id="control", concurrency_limit=None)
    gr.api(status, api_name="finetune_status", concurrency_id="control", concurrency_limit=None)
    return _FinetuneTab(device_md, preset_radio, [lam_input, lam_output, lam_depth], start_from, run)


@dataclass
class _LearnTab:
    """The Learn widgets that other tabs update, and the guided tour's buttons."""

    lab_start: gr.Dropdown
    tour_buttons: list[gr.Button]
    tour_train: gr.Button
    tour_md: gr.Markdown
    diagram: gr.Image
    arrive: dict[str, Any]      # the event that shows the start's lab when the tab opens (fn, inputs, outputs)


# The lab's lesson: (button, preset to reset to or None to keep the lab, text, press Play after).
LAB_TOUR = [
    ("A · Step the discriminator", "Full GIO-Ada (the paper)",
     "A fresh lab is ready. Press **Step D** three times. Only D_in and D_out learn: their bars move apart "
     "(target up, G(source) down) and D_in's map colours up, while G's translation stays exactly as it was — "
     "the card says so.", False),
    ("B · Step the generator", None,
     "Now press **Step G** a few times: G and T learn to fool the discriminators. The translation changes, "
     "D_in's bar for the *target* stays put (D did not learn) and its bar for *G(source)* rises.", False),
    ("C · Play", None,
     "Training runs: a D step, then a G step, again and again. Watch D_in's map — colour where it can tell, "
     "white where it is at chance — and the curves. Try the *slow: 1 step/s* speed, change λ_in while it runs, then Pause.",
     True),
    ("D · Break it: λ_in far too large", "λ_in far too large", "", True),
    ("E · Break it: D far stronger", "Discriminator far stronger", "", True),
]
LAB_SPEEDS = {"slow: 1 step/s": 0, "1 step/refresh": 1, "5 steps/refresh": 5, "20 steps/refresh": 20}


def _learn_tab(manager: FinetuneManager, data: DataConfig | None, defaults: FinetuneParams) -> _LearnTab:
    registry, has_depth = manager.registry, manager.has_depth
    labs = LabPool(registry, data, busy=manager.busy, compute=manager.compute)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            diagram_img = gr.Image(None, label="The four networks and their losses", show_label=False,
                                   interactive=False, format="png", buttons=["fullscreen"], elem_id="diagram")
        with gr.Column(scale=2):
            gr.Markdown(EXPLAIN)
    gr.Markdown("### Guided tour\nEach step sets up the Explore tab with the right models and shift.")
    with gr.Row():
        tour_btns = [gr.Button(t[0], size="sm") for t in TOUR]
        tour_train = gr.Button(f"{len(TOUR) + 1} · Train it yourself", size="sm")
    tour_md = gr.Markdown()

    gr.Markdown("### The live lab\nAdversarial training you can watch: the four networks train on a small fixed "
                f"problem ({LAB_BATCH} crops of {LAB_CROP[0]}×{LAB_CROP[1]} pixels per step), measured after every "
                "refresh on one held-out scene. **Play** and **Pause** it, or step the discriminators (**Step D**) "
                "and G and T (**Step G**) alone — each button runs the library's own training step. Start with the "
                "lesson:", elem_classes="gio-help")
    with gr.Row():
        lesson_btns = [gr.Button(t[0], size="sm", elem_id=f"lab-lesson-{i}") for i, t in enumerate(LAB_TOUR)]
    lesson_md = gr.Markdown(elem_classes="gio-card", elem_id="lab-lesson", visible=False)
    first = next(iter(LAB_PRESETS))
    with gr.Row(equal_height=False):
        lab_preset_radio = gr.Radio(list(LAB_PRESETS), value=first, label="Preset (Reset returns to its start)",
                                    scale=3, elem_id="lab-preset")
        lab_start = gr.Dropdown([SCRATCH] + registry.choices(), label="Start from", scale=1,
                                value=DEFAULT_START if DEFAULT_START in registry.keys() else "",
                                allow_custom_value=True, info="the weights Reset copies")
    watch_md = gr.Markdown(f"**Watch for:** {lab_preset(first, has_depth).watch}", elem_classes="gio-help")
    with gr.Row():
        reset_btn = gr.Button("↺ Reset", size="sm", elem_id="lab-reset")
        play_btn = gr.Button("▶ Play", variant="primary", size="sm", elem_id="lab-play")
        pause_btn = gr.Button("❚❚ Pause", size="sm", elem_id="lab-pause")
        step_d = gr.Button("Step D", size="sm", elem_id="lab-step-d")
        step_g = gr.Button("Step G", size="sm", elem_id="lab-step-g")
        step_both = gr.Button("Step both", size="sm", elem_id="lab-step-both")
        speed = gr.Dropdown(list(LAB_SPEEDS), value="1 step/refresh", show_label=False, min_width=200,
                            elem_id="lab-speed")
    s = lab_preset(first, has_depth).settings
    with gr.Accordion("λ and learning rates — changes take effect on the next step, also while playing", open=False):
        with gr.Row():
            lam_in = gr.Slider(0, 10, value=s.lam_input, step=0.01, label="λ_in")
            lam_out = gr.Slider(0, 1, value=s.lam_output, step=0.005, label="λ_out")
            lam_d = gr.Slider(0, 2, value=s.lam_depth, step=0.05, label="λ_depth", interactive=has_depth)
            lr = gr.Slider(0.0001, 0.02, value=s.lr, step=0.0001, label="Learning rate (G, T)")
            ratio = gr.Slider(0.1, 50, value=s.d_ratio, step=0.1, label="D learning rate ÷ G's")
    card = gr.HTML(elem_classes="gio-card", elem_id="lab-card-box")
    with gr.Row(equal_height=False):
        trans_img = gr.Image(label="G's translation", show_label=False, interactive=False, format="png",
                             elem_id="lab-translation", scale=3)
        maps_img = gr.Image(label="D_in's map", show_label=False, interactive=False, format="webp",
                            elem_id="lab-maps", scale=2)
    with gr.Row(equal_height=False):
        outputs_img = gr.Image(label="T's outputs", show_label=False, interactive=False, format="webp",
                               elem_id="lab-outputs", scale=3)
    with gr.Row():
        loss_plot, p_plot = _plots("lab-losses", "lab-p-real")
    gr.Markdown(PLOTS_HELP, elem_classes="gio-help")
    view_outputs = [card, trans_img, maps_img, outputs_img, loss_plot, p_plot]
    sliders = [lam_in, lam_out, lam_d, lr, ratio]


    @friendly
    def pick_preset(name: str) -> tuple[Any, ...]:
        p = lab_preset(name, has_depth)
        st = p.settings
        return (f"**Watch for:** {p.watch}", st.lam_input, st.lam_output, st.lam_depth, st.lr, st.d_ratio,
                _diagram(st.lam_input, st.lam_output, st.lam_depth))

    @friendly
    def reset(start: str, li: Any, lo: Any, ld: Any, rate: Any, r: Any, request: gr.Request) -> list[Any]:
        lab = labs.reset(_session(request), start or "", LabSettings.validated(li, lo, ld, rate, r))
        return _lab_values(lab.view())

    @friendly
    def arrive(start: str, li: Any, lo: Any, ld: Any, rate: Any, r: Any, request: gr.Request) -> list[Any]:
        """Opening the tab shows the start's lab at step 0 (built now if this visitor has none); a lab the
        visitor already has stays as it is."""
        try:
            labs.get(_session(request))
        except ValueError:
            return reset(start, li, lo, ld, rate, r, request)
        return [gr.skip()] * len(view_outputs)

    @friendly
    def change(li: Any, lo: Any, ld: Any, rate: Any, r: Any, request: gr.Request) -> None:
        try:
            lab = labs.get(_session(request))
        except ValueError:
            return None                              # no lab yet: Reset will read the sliders
        lab.update(LabSettings.validated(li, lo, ld, rate, r))

    @friendly
    def step(kind: str, request: gr.Request) -> list[Any]:
        lab = labs.get(_session(request))
        if not SLOT.acquire(lab.owner, timeout=3.0):
            raise ValueError("another learner's lab is training right now (one lab trains at a time on this "
                             "machine): press the step button again in a moment")
        try:
            FOREGROUND.wait_idle()
            lab.step(kind)
        finally:
            if not lab.playing:
                SLOT.release(lab.owner)
        return _lab_values(lab.view())

    @friendly
    def play(chosen_speed: str, request: gr.Request) -> Iterator[list[Any]]:
        lab = labs.get(_session(request))
        if lab.playing:
            raise ValueError("this lab is already playing: press Pause first")
        lab.speed = LAB_SPEEDS.get(chosen_speed, 1)
        drawn = 0.0
        for view in lab.play(lambda: lab.speed, busy=manager.busy):
            # The curves at most once a second (the browser redraws them); the images at every refresh.
            plots = time.monotonic() - drawn > 1.0 or not lab.playing
            drawn = time.monotonic() if plots else drawn
            yield _lab_values(view, plots)

    def pause(request: gr.Request) -> None:
        try:
            labs.get(_session(request)).pause()
        except ValueError:
            pass

    def set_speed(chosen_speed: str, request: gr.Request) -> None:
        try:
            labs.get(_session(request)).speed = LAB_SPEEDS.get(chosen_speed, 1)
        except ValueError:
            pass

    @friendly
    def lesson(k: int, start: str, request: gr.Request) -> list[Any]:
        name, preset_name, text, _ = LAB_TOUR[k]
        out: list[Any] = [gr.Markdown(f"**Lesson {name}.** {text}", visible=True)]
        if preset_name is None:
            try:
                view = labs.get(_session(request)).view()
            except ValueError:
                preset_name = first
        if preset_name is not None:
            p = lab_preset(preset_name, has_depth)
            text = text or f"{p.watch} Press **Pause** when you have seen it, then **Reset**."
            st = p.settings
            view = labs.reset(_session(request), start or "", st).view()
            out = [gr.Markdown(f"**Lesson {name}.** {text}", visible=True), preset_name,
                   f"**Watch for:** {p.watch}", st.lam_input, st.lam_output, st.lam_depth, st.lr, st.d_ratio]
        else:
            out += [gr.skip()] * 7
        return out + _lab_values(view)

    def step_button(kind: str) -> Callable:
        def press(request: gr.Request) -> list[Any]:
            return step(kind, request)
        return press

    def lesson_button(k: int) -> Callable:
        def press(start: str, request: gr.Request) -> list[Any]:
            return lesson(k, start, request)
        return press

    lab_preset_radio.input(pick_preset, lab_preset_radio, [watch_md, *sliders, diagram_img], api_name="lab_preset"
                           ).then(reset, [lab_start, *sliders], view_outputs, api_name="lab_preset_reset",
                                  concurrency_id="learn", concurrency_limit=2)
    reset_btn.click(reset, [lab_start, *sliders], view_outputs, api_name="lab_reset", concurrency_id="learn",
                    concurrency_limit=2, preprocess=False)
    for k, slider in enumerate(sliders):
        slider.release(change, sliders, None, api_name=f"lab_settings_{k + 1}", concurrency_id="control", concurrency_limit=None,
                       preprocess=False)
    speed.change(set_speed, speed, None, api_name="lab_speed", concurrency_id="control", concurrency_limit=None)
    for btn, kind in ((step_d, "d"), (step_g, "g"), (step_both, "both")):
        btn.click(step_button(kind), None, view_outputs, api_name=f"lab_step_{kind}",
                  concurrency_id="learn", concurrency_limit=2)
    play_kw = dict(fn=play, inputs=speed, outputs=view_outputs, concurrency_id="lab_play", concurrency_limit=4)
    play_btn.click(**play_kw, api_name="lab_play")
    pause_btn.click(pause, None, None, api_name="lab_pause", concurrency_id="control", concurrency_limit=None)
    lesson_outputs = [lesson_md, lab_preset_radio, watch_md, *sliders, *view_outputs]
    for k, btn in enumerate(lesson_btns):
        ev = btn.click(lesson_button(k), lab_start, lesson_outputs,
                       api_name=f"lab_lesson_{k + 1}", concurrency_id="learn", concurrency_limit=2)
        if LAB_TOUR[k][3]:
            ev.then(**play_kw, api_name=f"lab_lesson_{k + 1}_play")
    arrive_kw = dict(fn=arrive, inputs=[lab_start, *sliders], outputs=view_outputs, concurrency_id="learn",
                     concurrency_limit=2)
    return _LearnTab(lab_start, tour_btns, tour_train, tour_md, diagram_img, arrive_kw)


def _session(request: gr.Request | None) -> str:
    """The browser session a lab belongs to (API callers without one share a single lab)."""
    return getattr(request, "session_hash", None) or "anonymous"


def _lab_values(view: LabView, plots: bool = True) -> list[Any]:
    curves = _curves(view.history) if plots else [gr.skip(), gr.skip()]
    return [lab_html(view), translation_pair(view), view.maps, view.outputs, *curves]


def _wire_first_view(demo: gr.Blocks, registry: ModelRegistry, compute: ComputeThread, scenes_kind: str,
                     hero: gr.HTML, ex: _ExploreTab, ft: _FinetuneTab, learn: _LearnTab,
                     first_view: gr.events.Dependency) -> None:
    """Images the first view shows are drawn when a page loads, not when the app starts: building the demo
    renders nothing, so the server answers sooner (the scenes are rendered once, then cached). The device
    is named then too: asking for a GPU imports torch (on the compute thread, where the first view's models
    load), which the app does not wait for before it serves.
    The Learn tab's diagram (matplotlib) is drawn once ``first_view`` (Explore's first scene) has shown."""
    def device() -> tuple[str, str]:
        found = compute.call(lambda: registry.device)
        return hero_html(len(registry.shipped()), len(SHIPPED), scenes_kind, found.type), device_note(found)

    demo.load(device, None, [hero, ft.device], api_name="device")
    demo.load(ex.thumbnails, None, ex.gallery, api_name="scene_gallery", concurrency_id="explore",
              concurrency_limit=EXPLORE_CONCURRENCY)
    first_view.then(_diagram, None, learn.diagram, api_name="diagram")


def _wire_model_lists(demo: gr.Blocks, registry: ModelRegistry, ex: _ExploreTab, ft: _FinetuneTab,
                      learn: _LearnTab) -> gr.events.Dependency:
    """Every model dropdown follows the registry: on load, on Refresh and after a run is saved. Returns the
    page load's chain (lists, then Explore's first scene and the models' descriptions)."""
    models, lists = [ex.model_a, ex.model_b], [ex.model_a, ex.model_b, ft.start_from, learn.lab_start]
    update = functools.partial(_model_lists, registry)
    ex.refresh.click(update, models, lists, api_name="list_models")
    first_view = demo.load(update, None, lists, api_name="on_load").then(
        **ex.explore, api_name="explore_initial").then(ex.describe, models, ex.model_info, api_name="describe_initial")
    ft.run.then(update, models, lists, api_name="refresh_after_run")
    return first_view


def _wire_tour(tabs: gr.Tabs, registry: ModelRegistry, has_depth: bool, ex: _ExploreTab, ft: _FinetuneTab,
               learn: _LearnTab) -> None:
    """The guided tour's buttons set up Explore (then run it), and the last one the Fine-tune tab."""
    for k, btn in enumerate(learn.tour_buttons):
        btn.click(functools.partial(_tour_step, registry, k), None,
                  [tabs, ex.model_a, ex.model_b, ex.shift, ex.scene, learn.tour_md, ex.tour_box],
                  api_name=f"tour_{k + 1}").then(**ex.explore, api_name=f"tour_{k + 1}_explore").then(
            ex.describe, [ex.model_a, ex.model_b], ex.model_info, api_name=f"tour_{k + 1}_describe")
    full = preset("Full GIO-Ada", has_depth)
    learn.tour_train.click(lambda: (gr.Tabs(selected="finetune"), "Full GIO-Ada", *full), None,
                           [tabs, ft.preset, *ft.lambdas], api_name="tour_5")


# ---------------------------------------------------------------------------------------------------
# Helpers of the callbacks: gioada results -> widget values
# ---------------------------------------------------------------------------------------------------
def _default_models(keys: list[str]) -> tuple[str | None, str]:
    """Model A: the full method if installed; model B: the no-adaptation baseline, to compare against."""
    a = next((k for k in ("gioada", *keys) if k in keys), None)
    b = next((k for k in ("source-only", *keys) if k in keys and k != a), "")
    return a, b


def _model_lists(registry: ModelRegistry, a: str | None = None, b: str | None = None) -> tuple[Any, ...]:
    """The four model dropdowns with the registry's current choices, keeping A and B where still on offer."""
    keys, choices = registry.keys(), registry.choices()
    default_a, default_b = _default_models(keys)
    a = a if a in keys else default_a
    b = b if b in keys and b != a else (default_b if default_b != a else "")
    return (gr.Dropdown(choices=choices, value=a), gr.Dropdown(choices=[NONE] + choices, value=b),
            gr.Dropdown(choices=[SCRATCH] + choices), gr.Dropdown(choices=[SCRATCH] + choices))


def _diagram(*lambdas: float) -> Any:
    """The networks diagram, greyed out where (lam_input, lam_output, lam_depth) switch parts off; the
    defaults' when none are given. Matplotlib is imported when it is first drawn, not when the app starts."""
    from gioada.app import diagram
    return diagram.render(*lambdas)


def _tour_step(registry: ModelRegistry, k: int) -> tuple[Any, ...]:
    """Step ``k`` of the tour: its preferred models among those installed, its shift, scene 3, its text."""
    _, text, want_a, want_b, strength = TOUR[k]
    keys = registry.keys()
    a = next((m for m in want_a if m in keys), keys[0] if keys else None)
    b = next((m for m in want_b if m in keys and m != a), "")
    missing = [m for m in want_a[:1] + want_b[:1] if m not in keys]
    if missing:
        text += f"\n\n*Not installed here: {', '.join(missing)} — showing what is available.*"
    text = f"**Guided tour {TOUR[k][0]}.** {text}"
    return (gr.Tabs(selected="explore"), gr.Dropdown(value=a), gr.Dropdown(value=b), strength, 3, text,
            gr.Markdown(text, visible=True))


def _stream(job: FinetuneJob) -> Iterator[tuple[Any, ...]]:
    """A run's widget values as it trains; the run's failure as a gr.Error, its divergence as a warning.

    Watching must not slow the run (the server and the browser share its CPU): each update sends the
    progress line, the curves' new points at most every PLOT_SECONDS, and the rest only when it changed."""
    drawn, shown = 0.0, None
    for snap in job.updates(min_interval=UPDATE_SECONDS):
        plots = snap.finished or time.monotonic() - drawn > PLOT_SECONDS
        drawn = time.monotonic() if plots else drawn
        yield _finetune_values(snap, None if snap.finished else shown, plots)   # the last one whole, for API callers
        shown = snap
    if snap.state in ("oom", "failed"):
        raise gr.Error(snap.message, print_exception=False)
    if snap.state == "diverged":
        gr.Warning(snap.message)


def _image(label: str, elem_id: str | None = None) -> gr.Image:
    # The library draws each caption into its image: Gradio's label badge would cover these short, wide images.
    # JPEG: about 20× faster to encode than PNG here, and half the bytes to fetch.
    return gr.Image(label=label, show_label=False, interactive=False, format="jpeg", buttons=["fullscreen"],
                    min_width=150, elem_id=elem_id)


def _slider(label: str, elem_id: str) -> gr.ImageSlider:
    return gr.ImageSlider(label=label, show_label=False, interactive=False, format="jpeg", buttons=["fullscreen"],
                          min_width=150, elem_id=elem_id, max_height=260)


def _model_row(name: str) -> tuple[gr.Column, list[gr.components.Component]]:
    """One model's row: title, two before/after sliders, depth and D_in's maps, its numbers, raw downloads."""
    n = name.lower()
    with gr.Column(elem_classes="gio-card") as col:
        title = gr.Markdown()
        with gr.Row(equal_height=False):
            trans = _slider("Source vs translation G(source): drag to compare", f"{n}-slider-translation")
            pred = _slider("Ground truth vs prediction: drag to compare", f"{n}-slider-prediction")
        panels = _image("Predicted depth, and where D_in thinks real or fake", f"{n}-panels")
        with gr.Row(equal_height=False):
            stats = gr.HTML()
            files = gr.File(label="Raw outputs: classes (indexed PNG, class palette), depth (16-bit PNG, cm)",
                            file_count="multiple", interactive=False, elem_id=f"{n}-downloads")
    return col, [title, trans, pred, panels, stats, files]


def _explore_values(r: ExploreResult, space: Any, tag: str) -> list[Any]:
    values: list[Any] = [f"**{r.title}**", r.strip]
    for i in range(2):
        if i < len(r.models):
            v = r.models[i]
            values += [gr.Column(visible=True), f"#### Model {'AB'[i]}: `{v.key}`",
                       (v.source, v.translation) if v.source is not None else None,
                       (v.truth, v.prediction), v.panels, stats_html(v),
                       raw_downloads(v, space, tag)]
        else:
            values += [gr.Column(visible=False), "", None, None, None, "", None]
    values.append("\n\n".join(f"> {n}" for n in r.notes))
    return values


def _finetune_values(s: Snapshot, shown: Snapshot | None = None, plots: bool = True) -> tuple[Any, ...]:
    """The Fine-tune tab's values for ``s``; what did not change since ``shown`` (the snapshot the page
    already shows) is skipped, and so are the curves unless ``plots``."""
    skip = gr.skip()
    curves = _curves(s.history) if plots else [skip, skip]
    preview = s.preview if shown is None or s.preview is not shown.preview else skip
    if shown is None or s.before is not shown.before or s.after is not shown.after:
        result = result_html(s), pd.DataFrame(per_class_rows(s.before, s.after), columns=PER_CLASS_HEADERS)
    else:
        result = skip, skip
    return (progress_html(s), *curves, preview, *result)


PLOTS_HELP = ("The curves fill in as training runs. Losses: seg and depth are T's, adv_in is G and T fooling "
              "D_in, adv_out T fooling D_out, content G's content term, G+T their total; D_in and D_out are the "
              "discriminators' own. P(real): G(src) is the translated source; at 50% (chance) a discriminator "
              "can no longer tell the domains apart.")


def _plots(losses_id: str, p_real_id: str) -> tuple[gr.LinePlot, gr.LinePlot]:
    """Every loss term, and the discriminators' P(real) with chance (50%) marked: drawn by the browser from a
    few kB of points per refresh (see _curves), not rendered on the server."""
    common = dict(x="step", y="value", color="series", height=280)
    return (gr.LinePlot(curve_frame([], LOSS_SERIES), title="Losses (every term)", color_map=LOSS_COLORS,
                        elem_id=losses_id, **common),
            gr.LinePlot(curve_frame([], CONFIDENCE_SERIES, chance=True), color_map=CONFIDENCE_COLORS,
                        title="D's P(real): target vs G(source)", y_lim=[0, 1], elem_id=p_real_id, **common))


def _curves(history: list[dict[str, float]]) -> list[Any]:
    """The points of the two plots of :func:`_plots`."""
    return [curve_frame(history, LOSS_SERIES), curve_frame(history, CONFIDENCE_SERIES, chance=True)]


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False, hosts: list[str] | tuple[str, ...] = ()) -> Any:
    """Serve ``demo`` with the app's theme, upload limit and (by default) localhost only.

    Requests whose Host header is not one the app serves get a 403 (DNS rebinding): allowed are localhost,
    127.0.0.1, ::1, ``host``, ``hosts`` and the names in ``$GIOADA_ALLOWED_HOSTS``."""
    allowed = allowed_hosts(host, hosts, share=share)
    demo.validate_inputs = _check_input_count      # instead of a message that reaches API callers as null
    return demo.launch(server_name=host, server_port=port, share=share, max_file_size=MAX_FILE_SIZE, theme=THEME,
                       css=CSS, prevent_thread_lock=prevent_thread_lock, quiet=quiet, ssr_mode=False,
                       show_error=False, app_kwargs={"middleware": [Middleware(HostCheck, allowed=allowed)]})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="The gioada app: explore, fine-tune and learn GIO-Ada in a browser.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; the default serves this machine only. 0.0.0.0 exposes the app "
                        "(and its fine-tuning, which uses this machine's CPU/GPU) to your whole network")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--allowed-hosts", default="", metavar="NAMES",
                   help="comma-separated extra host names the app answers to, e.g. lab.example.org (a leading "
                        f"'*.' matches sub-domains; also ${ALLOWED_HOSTS_ENV}). Other Host headers get a 403")
    p.add_argument("--share", action="store_true",
                   help="also create a public *.gradio.live link: anyone with it can use the app")
    p.add_argument("--runs-dir", default="runs", help="where fine-tuned runs are saved and listed")
    p.add_argument("--assets-dir", default=str(ASSETS), help=argparse.SUPPRESS)
    p.add_argument("--source", help="explore/fine-tune on a dataset on disk, e.g. vkitti2:/data/vkitti2")
    p.add_argument("--target", help="e.g. kitti:/data/kitti")
    p.add_argument("--label-space", default="vkitti10", help="vkitti10, cityscapes19, synthia16 or synthia13")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Serving on %s: anyone who can reach this address can use the app and start training runs "
                    "on this machine. Use the default (127.0.0.1) unless you mean it.", args.host)
    if args.share:
        log.warning("--share creates a PUBLIC link through gradio.live: anyone who has it can use the app.")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    scenes, data = None, None
    if args.source or args.target:
        source, target = args.source or "sim", args.target or "sim"
        try:
            scenes = DatasetScenes(source, target, args.label_space)
            data = DataConfig(source=source, target=target, label_space=args.label_space)
        except (ValueError, FileNotFoundError, TypeError) as e:
            sys.exit(f"error: cannot open --source {source} --target {target}: {e}")
    try:
        demo = build_demo(args.assets_dir, args.runs_dir, scenes=scenes, data=data)
    except ValueError as e:
        sys.exit(f"error: {e}")
    launch(demo, host=args.host, port=args.port, share=args.share, prevent_thread_lock=True,
           hosts=[h for h in args.allowed_hosts.split(",") if h.strip()])
    # Serving: while the browser loads the page, the compute thread imports torch and loads the first view's models.
    explorer = demo.gioada["explorer"]
    explorer.preload([k for k in _default_models(explorer.registry.keys()) if k])
    demo.block_thread()


if __name__ == "__main__":
    main()
