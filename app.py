"""The gioada app: explore domain shift, watch the discriminators, fine-tune and learn GIO-Ada in a browser.

    python app.py                      # http://127.0.0.1:7860, the shipped models in assets/ and runs in runs/
    python app.py --source vkitti2:/data/vkitti2 --target kitti:/data/kitti   # explore datasets on disk

Every event has an ``api_name``, so the app can be scripted with ``gradio_client``::

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    outputs = client.predict("gioada", "source-only", 3, 1.0, api_name="/explore")  # model A, model B, scene, shift

This file only lays out widgets and wires them to gioada: ``gioada.explore`` (Explore), ``gioada.finetune``
(fine-tuning runs), ``gioada.steplab`` ("step once"), ``gioada.plots`` and ``gioada.diagram``; its HTML
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

from app_html import hero_html, legend_html, progress_html, result_html, stats_html
from gioada import diagram
from gioada.config import DataConfig
from gioada.explore import Explorer, ExploreResult
from gioada.finetune import (LIMITS, PRESETS, FinetuneJob, FinetuneManager, FinetuneParams, RunInProgress, Snapshot,
                             device_note, per_class_rows, preset)
from gioada.plots import confidence_figure, loss_figure
from gioada.pretrained import ASSETS
from gioada.registry import ModelRegistry
from gioada.scenes import MAX_SCENE, DatasetScenes, SceneSource
from gioada.serving import ALLOWED_HOSTS_ENV, HostCheck, allowed_hosts
from gioada.steplab import StepLab
from gioada.uploads import MAX_UPLOAD_BYTES

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
EXPLORE_CONCURRENCY = 4          # explore calls at once (inference only; they never wait behind training)
NONE, SCRATCH = ("— none —", ""), ("Scratch (random weights)", "")
QUEUE_SIZE = 64                  # requests waiting, at most; more are turned away at once
PER_CLASS_HEADERS = ["class", "IoU before (%)", "IoU after (%)", "change"]


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
(chance) for everything. λ_in = λ_out = 0 is the no-adaptation baseline; λ_depth = 0 drops geometry.
"""


# ---------------------------------------------------------------------------------------------------
# Errors: the library raises ValueError (bad input) and RunInProgress; the browser gets gr.Error
# messages, never a traceback.
# ---------------------------------------------------------------------------------------------------
def _message(e: Exception) -> gr.Error:
    if isinstance(e, (ValueError, RunInProgress, FileNotFoundError)):
        return gr.Error(str(e), print_exception=False)
    log.exception("unexpected error in an app callback")
    return gr.Error("Something went wrong on the server (it has been logged). Please try again.",
                    print_exception=False)


def friendly(fn: Callable) -> Callable:
    """Turn library errors into gr.Error messages (works for plain functions and generators)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001 - mapped to a message; unexpected ones are logged in full
                raise _message(e) from None
        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
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
    explorer = Explorer(registry, scenes)
    manager = FinetuneManager(registry, data=data, eval_scenes=eval_scenes)

    with gr.Blocks(title="GIO-Ada lab", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.HTML(hero_html(len(registry.shipped()), explorer.scenes.kind, registry.device.type))
        with gr.Tabs(selected="explore") as tabs:
            with gr.Tab("Explore", id="explore"):
                ex = _explore_tab(explorer)
            with gr.Tab("Fine-tune", id="finetune"):
                ft = _finetune_tab(manager, defaults)
            with gr.Tab("Learn", id="learn"):
                learn = _learn_tab(manager, data, defaults)
        _wire_model_lists(demo, registry, ex, ft, learn)
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
    explore: dict[str, Any]      # keyword arguments of the explore event
    describe: Callable[[str, str], str]


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
            gallery = gr.Gallery(explorer.gallery(6), label="Built-in scenes", show_label=False, columns=3,
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
    scene_md = gr.Markdown()
    with gr.Row():
        src_img = _image("Source (synthetic)", "src-img")
        tgt_img = _image("Target (real-style)", "tgt-img")
        gt_img = _image("Ground truth", "gt-img")
        gt_depth = _image("Ground-truth depth", "gt-depth")
    gr.HTML(legend_html(explorer.scenes.space))
    a_col, a_out = _model_row("A")
    b_col, b_out = _model_row("B")
    notes_md = gr.Markdown()
    outputs = [scene_md, src_img, tgt_img, gt_img, gt_depth, a_col, *a_out, b_col, *b_out, notes_md]

    @friendly
    def explore(a: str, b: str, index: Any, strength: Any) -> list[Any]:
        return _explore_values(explorer.scene([a, b], index, strength))

    @friendly
    def explore_photo(data: bytes | None, a: str, b: str) -> list[Any]:
        if data is None:
            raise ValueError("no file was received: please choose an image to upload")
        return _explore_values(explorer.upload([a, b], data))

    @friendly
    def describe(a: str, b: str) -> str:
        return "  \n".join(f"**{k}** — {registry.describe(k)}" for k in (a, b) if k)

    # preprocess=False: raw values reach the library, which validates them (API calls skip the sliders'
    # bounds, and its messages name the valid range).
    explore_kw = dict(fn=explore, inputs=[model_a, model_b, scene, shift], outputs=outputs,
                      concurrency_id="explore", concurrency_limit=EXPLORE_CONCURRENCY, preprocess=False)
    run_btn.click(**explore_kw, api_name="explore")
    scene.submit(**explore_kw, api_name="explore_scene_number")
    shift.release(**explore_kw, api_name="explore_shift")
    random_btn.click(lambda: random.randrange(MAX_SCENE), outputs=scene, api_name="random_scene").then(
        **explore_kw, api_name="explore_random")
    gallery.select(_picked, outputs=scene, api_name="pick_scene").then(**explore_kw, api_name="explore_picked")
    for dd, name in ((model_a, "a"), (model_b, "b")):
        dd.input(**explore_kw, api_name=f"explore_model_{name}").then(
            describe, [model_a, model_b], model_info, api_name=f"describe_{name}")
    upload.upload(explore_photo, [upload, model_a, model_b], outputs, api_name="explore_upload",
                  concurrency_id="explore", concurrency_limit=EXPLORE_CONCURRENCY)
    return _ExploreTab(model_a, model_b, scene, shift, model_info, tour_box, refresh_btn, explore_kw, describe)


@dataclass
class _FinetuneTab:
    """The Fine-tune widgets that other tabs drive, and the run's event (to refresh the model lists after it)."""

    preset: gr.Radio
    lambdas: list[gr.Slider]     # λ_in, λ_out, λ_depth
    start_from: gr.Dropdown
    run: gr.events.Dependency


def _finetune_tab(manager: FinetuneManager, defaults: FinetuneParams) -> _FinetuneTab:
    has_depth = manager.has_depth          # False for GTA5: the depth loss is off, and the sliders say so
    gr.Markdown(device_note(manager.registry.device), elem_classes="gio-help")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            preset_radio = gr.Radio(list(PRESETS), value="Full GIO-Ada", label="Preset",
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
                start_from = gr.Dropdown([SCRATCH] + manager.registry.choices(), value="", label="Start from",
                                         allow_custom_value=True)
            with gr.Row():
                start_btn = gr.Button("▶ Start fine-tuning", variant="primary", scale=2)
                stop_btn = gr.Button("■ Stop", variant="stop", scale=1)
        with gr.Column(scale=2):
            progress = gr.HTML(progress_html(None), elem_classes="gio-card", elem_id="ft-progress")
            with gr.Row():
                # Matplotlib, drawn on the server: Gradio's native plots keep the series of their first data
                # for good, and each run has its own set of loss terms.
                loss_plot = gr.Plot(loss_figure([]), label="Losses (every term)", show_label=False,
                                    elem_id="loss-plot", format="png")
                conf_plot = gr.Plot(confidence_figure([]), label="Discriminator confidence", show_label=False,
                                    elem_id="conf-plot", format="png")
            gr.Markdown("**Preview** — a fixed held-out scene, refreshed every few steps", elem_classes="gio-help")
            preview = gr.Image(label="Preview", show_label=False, interactive=False, format="png",
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
                          concurrency_id="train", concurrency_limit=8, preprocess=False)
    stop_btn.click(stop, None, progress, api_name="stop", concurrency_id="control", concurrency_limit=None)
    gr.api(status, api_name="finetune_status", concurrency_id="control", concurrency_limit=None)
    return _FinetuneTab(preset_radio, [lam_input, lam_output, lam_depth], start_from, run)


@dataclass
class _LearnTab:
    """The Learn widgets that other tabs update, and the guided tour's buttons."""

    lab_start: gr.Dropdown
    tour_buttons: list[gr.Button]
    tour_train: gr.Button
    tour_md: gr.Markdown


def _learn_tab(manager: FinetuneManager, data: DataConfig | None, defaults: FinetuneParams) -> _LearnTab:
    registry, has_depth = manager.registry, manager.has_depth
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            diagram_img = gr.Image(diagram.render(), label="The four networks and their losses", show_label=False,
                                   interactive=False, format="png", buttons=["fullscreen"], elem_id="diagram")
        with gr.Column(scale=2):
            gr.Markdown(EXPLAIN)
    gr.Markdown("### Guided tour\nEach step sets up the Explore tab with the right models and shift.")
    with gr.Row():
        tour_btns = [gr.Button(t[0], size="sm") for t in TOUR]
        tour_train = gr.Button("5 · Train it yourself", size="sm")
    tour_md = gr.Markdown()
    gr.Markdown("### Step once\nOne discriminator step, then one generator step, on a fixed batch — and what "
                "each of them changed. Pick the lambdas, press **Reset**, then **Step once** as often as you like.")
    with gr.Row():
        lab_preset = gr.Radio(list(PRESETS), value="Full GIO-Ada", label="Lambdas", scale=3)
        lab_lr = gr.Slider(0.0001, 0.01, value=0.002, step=0.0001, label="Learning rate", scale=2)
        lab_start = gr.Dropdown([SCRATCH] + registry.choices(), value="", label="Start from", scale=2,
                                allow_custom_value=True)
    with gr.Row():
        lab_reset = gr.Button("Reset", scale=1)
        lab_step = gr.Button("Step once: D step, then G step", variant="primary", scale=2)
    # Each session's own model and batch (~25 MB), dropped after 15 idle minutes.
    lab_state = gr.State(None, time_to_live=900)
    lab_image = gr.Image(label="The translation of one source image, before and after the step", show_label=False,
                         interactive=False, format="png", buttons=["fullscreen"], elem_id="lab-image")
    lab_md = gr.Markdown()
    lab_table = gr.Dataframe(headers=["quantity", "before", "after D step", "after G step"],
                             label="Measured on the fixed batch", interactive=False)

    @friendly
    def draw_diagram(name: str) -> Any:
        return diagram.render(*preset(name, has_depth))

    @friendly
    def lab_reset_fn(name: str, rate: Any, start: str) -> tuple[Any, ...]:
        lab = StepLab(registry, data)
        report = lab.reset(start or "", *preset(name, has_depth), lr=rate, height=defaults.height)
        return lab, report.image, report.summary, report.rows, diagram.render(*preset(name, has_depth))

    @friendly
    def lab_step_fn(lab: StepLab | None) -> tuple[Any, ...]:
        if lab is None:
            raise ValueError("press Reset first: it builds the model and the fixed batch")
        report = lab.step()
        return lab, report.image, f"#### After step {report.steps}\n" + report.summary, report.rows

    lab_preset.input(draw_diagram, lab_preset, diagram_img, api_name="diagram")
    lab_reset.click(lab_reset_fn, [lab_preset, lab_lr, lab_start], [lab_state, lab_image, lab_md, lab_table,
                                                                    diagram_img],
                    api_name="lab_reset", concurrency_id="learn", concurrency_limit=2, preprocess=False)
    lab_step.click(lab_step_fn, lab_state, [lab_state, lab_image, lab_md, lab_table], api_name="lab_step",
                   concurrency_id="learn", concurrency_limit=2)
    return _LearnTab(lab_start, tour_btns, tour_train, tour_md)


def _wire_model_lists(demo: gr.Blocks, registry: ModelRegistry, ex: _ExploreTab, ft: _FinetuneTab,
                      learn: _LearnTab) -> None:
    """Every model dropdown follows the registry: on load, on Refresh and after a run is saved."""
    models, lists = [ex.model_a, ex.model_b], [ex.model_a, ex.model_b, ft.start_from, learn.lab_start]
    update = functools.partial(_model_lists, registry)
    ex.refresh.click(update, models, lists, api_name="list_models")
    demo.load(update, None, lists, api_name="on_load").then(**ex.explore, api_name="explore_initial").then(
        ex.describe, models, ex.model_info, api_name="describe_initial")
    ft.run.then(update, models, lists, api_name="refresh_after_run")


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


def _picked(evt: gr.SelectData) -> int:
    return int(evt.index)


def _stream(job: FinetuneJob) -> Iterator[tuple[Any, ...]]:
    """A run's widget values as it trains; the run's failure as a gr.Error, its divergence as a warning."""
    drawn = 0.0
    for snap in job.updates():
        # Progress every update; the plots (drawn on this CPU) at most every 2 s, and at the end.
        plots = snap.finished or time.monotonic() - drawn > 2.0
        drawn = time.monotonic() if plots else drawn
        yield _finetune_values(snap, plots)
    if snap.state in ("oom", "failed"):
        raise gr.Error(snap.message, print_exception=False)
    if snap.state == "diverged":
        gr.Warning(snap.message)


def _image(label: str, elem_id: str | None = None) -> gr.Image:
    # The library draws each caption into its image: Gradio's label badge would cover these short, wide images.
    return gr.Image(label=label, show_label=False, interactive=False, format="png", buttons=["fullscreen"],
                    min_width=150, elem_id=elem_id)


def _model_row(name: str) -> tuple[gr.Column, list[gr.components.Component]]:
    """One model's row: title, translation, prediction, depth, confidence maps, and its numbers."""
    with gr.Column(elem_classes="gio-card") as col:
        title = gr.Markdown()
        with gr.Row():
            trans = _image("Translation G(source)", f"{name.lower()}-translation")
            pred = _image("Prediction on target", f"{name.lower()}-prediction")
            depth = _image("Predicted depth", f"{name.lower()}-depth")
            conf = _image('Where D_in thinks "fake"', f"{name.lower()}-confidence")
        stats = gr.HTML()
    return col, [title, trans, pred, depth, conf, stats]


def _explore_values(r: ExploreResult) -> list[Any]:
    values: list[Any] = [f"**{r.title}**", r.source, r.target, r.labels, r.depth]
    for i in range(2):
        if i < len(r.models):
            v = r.models[i]
            values += [gr.Column(visible=True), f"#### Model {'AB'[i]}: `{v.key}`", v.translation, v.prediction,
                       v.depth, v.confidence, stats_html(v)]
        else:
            values += [gr.Column(visible=False), "", None, None, None, None, ""]
    values.append("\n\n".join(f"> {n}" for n in r.notes))
    return values


def _finetune_values(s: Snapshot, plots: bool = True) -> tuple[Any, ...]:
    losses, confidences = ((loss_figure(s.history), confidence_figure(s.history)) if plots
                           else (gr.skip(), gr.skip()))
    table = per_class_rows(s.before, s.after)
    return (progress_html(s), losses, confidences, s.preview, result_html(s),
            pd.DataFrame(table, columns=PER_CLASS_HEADERS))


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False, hosts: list[str] | tuple[str, ...] = ()) -> Any:
    """Serve ``demo`` with the app's theme, upload limit and (by default) localhost only.

    Requests whose Host header is not one the app serves get a 403 (DNS rebinding): allowed are localhost,
    127.0.0.1, ::1, ``host``, ``hosts`` and the names in ``$GIOADA_ALLOWED_HOSTS``."""
    allowed = allowed_hosts(host, hosts, share=share)
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
    launch(demo, host=args.host, port=args.port, share=args.share,
           hosts=[h for h in args.allowed_hosts.split(",") if h.strip()])


if __name__ == "__main__":
    main()
