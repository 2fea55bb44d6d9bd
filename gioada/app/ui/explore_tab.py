"""The Explore tab: a scene (built-in or uploaded) through up to two models — translation, segmentation, depth
and the discriminators' judgement — with the widgets other tabs drive (:class:`ExploreTab`)."""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from gioada.app.explore import Explorer, ExploreResult, raw_downloads
from gioada.app.scenes import MAX_SCENE
from gioada.app.ui.cards import legend_html, stats_html
from gioada.app.ui.widgets import NONE, friendly, image, slider

GALLERY_SCENES = 6               # thumbnails of held-out scenes 0..5 in Explore's gallery
# Explore calls let in at once. They compute one by one on the compute thread; OnComputeThread answers any
# beyond its max_waiting with "busy, try again" at once, so none waits long in Gradio's queue instead.
EXPLORE_CONCURRENCY = 16


@dataclass
class ExploreTab:
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
    prefetch_random: dict[str, Any]  # ... of the event that draws Random's next scene and computes its view
    describe: Callable[[str, str], str]
    thumbnails: Callable[[], list[Any]]


def explore_tab(explorer: Explorer) -> ExploreTab:
    registry = explorer.registry
    first_a, first_b = default_models(registry.keys())
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
    scene_strip = image("Source, target, ground truth and ground-truth depth", "scene-strip")
    gr.HTML(legend_html(explorer.scenes.space))
    a_col, a_out = model_row("A")
    b_col, b_out = model_row("B")
    notes_md = gr.Markdown()
    outputs = [scene_md, scene_strip, a_col, *a_out, b_col, *b_out, notes_md]
    space = explorer.scenes.space

    @friendly
    def explore(a: str, b: str, index: Any, strength: Any) -> list[Any]:
        return explore_values(explorer.scene([a, b], index, strength), space, f"scene{index}")

    @friendly
    def explore_picked(a: str, b: str, strength: Any, evt: gr.EventData) -> list[Any]:
        # One event per gallery click (not a select, then an explore): one round trip fewer. gr.EventData, not
        # gr.SelectData: an API call without the click's data then reaches this check instead of failing
        # inside Gradio.
        data = evt._data if isinstance(evt._data, dict) else {}
        index = data.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError("no scene was picked: click a scene in the gallery (or call /explore with a scene number)")
        return [index, *explore_values(explorer.scene([a, b], index, strength), space, f"scene{index}")]

    @friendly
    def explore_photo(data: bytes | None, a: str, b: str) -> list[Any]:
        if data is None:
            raise ValueError("no file was received: please choose an image to upload")
        return explore_values(explorer.upload([a, b], data), space, "upload")

    @friendly
    def describe(a: str, b: str) -> str:
        lines = [f"**{k}** — {registry.describe(k)}" for k in (a, b) if k]
        lines += [f"*Not offered: {reason}*" for _, reason in registry.broken()]
        return "  \n".join(lines)

    # preprocess=False: raw values reach the library, which validates them (API calls skip the sliders'
    # bounds, and its messages name the valid range). The progress shows on the scene's title alone: a spinner
    # over each of the 20 outputs cost the page about 80 ms a click to draw and take down (README, Benchmarks).
    progress = dict(show_progress_on=[scene_md], concurrency_id="explore", concurrency_limit=EXPLORE_CONCURRENCY)
    explore_kw = dict(fn=explore, inputs=[model_a, model_b, scene, shift], outputs=outputs, preprocess=False,
                      **progress)
    run_btn.click(**explore_kw, api_name="explore")
    scene.submit(**explore_kw, api_name="explore_scene_number")
    shift.release(**explore_kw, api_name="explore_shift")
    # Random scene shows a number drawn one click ahead, whose view was computed meanwhile (per session: the
    # draw after the page's first view and after each Random click), so the click is served from the cache.
    # One event sets the number and the view: a second round trip cost the click about 100 ms.
    next_random = gr.State(None)

    @friendly
    def explore_random(a: str, b: str, strength: Any, drawn: int | None) -> list[Any]:
        index = drawn if isinstance(drawn, int) else random.randrange(MAX_SCENE)
        return [index, None, *explore_values(explorer.scene([a, b], index, strength), space, f"scene{index}")]

    def in_background(a: str, b: str, index: Any, strength: Any) -> None:
        explorer.prefetch([k for k in (a, b) if k], index, strength)   # errors wait for the click that meets them

    def draw_random(a: str, b: str, strength: Any) -> int:
        n = random.randrange(MAX_SCENE)
        in_background(a, b, n, strength)
        return n

    prefetch_random = dict(fn=draw_random, inputs=[model_a, model_b, shift], outputs=next_random,
                           preprocess=False, show_progress="hidden")
    random_btn.click(explore_random, [model_a, model_b, shift, next_random], [scene, next_random, *outputs],
                     api_name="explore_random", preprocess=False, **progress).then(
        **prefetch_random, api_name="prefetch_random")
    # A number being typed is computed in the background (the latest one typed: see OnComputeThread.prefetch), so
    # Enter or Run a moment later is served from the view cache.
    scene.input(in_background, [model_a, model_b, scene, shift], None, preprocess=False, show_progress="hidden",
                trigger_mode="always_last", api_name="prefetch_typed")
    gallery.select(explore_picked, [model_a, model_b, shift], [scene, *outputs], api_name="explore_picked",
                   **progress)
    for dd, name in ((model_a, "a"), (model_b, "b")):
        dd.input(**explore_kw, api_name=f"explore_model_{name}").then(
            describe, [model_a, model_b], model_info, api_name=f"describe_{name}")
    upload.upload(explore_photo, [upload, model_a, model_b], outputs, api_name="explore_upload", **progress)
    return ExploreTab(model_a, model_b, scene, shift, model_info, tour_box, refresh_btn, gallery, explore_kw,
                       prefetch_random, describe, functools.cache(functools.partial(explorer.gallery, GALLERY_SCENES)))


def default_models(keys: list[str]) -> tuple[str | None, str]:
    """Model A: the full method if installed; model B: the no-adaptation baseline, to compare against."""
    a = next((k for k in ("gioada", *keys) if k in keys), None)
    b = next((k for k in ("source-only", *keys) if k in keys and k != a), "")
    return a, b


def model_row(name: str) -> tuple[gr.Column, list[gr.components.Component]]:
    """One model's row: title, two before/after sliders, depth and D_in's maps, its numbers, raw downloads."""
    n = name.lower()
    with gr.Column(elem_classes="gio-card") as col:
        title = gr.Markdown()
        with gr.Row(equal_height=False):
            trans = slider("Source vs translation G(source): drag to compare", f"{n}-slider-translation")
            pred = slider("Ground truth vs prediction: drag to compare", f"{n}-slider-prediction")
        panels = image("Predicted depth, and where D_in thinks real or fake", f"{n}-panels")
        with gr.Row(equal_height=False):
            stats = gr.HTML()
            files = gr.File(label="Raw outputs: classes (indexed PNG, class palette), depth (16-bit PNG, cm)",
                            file_count="multiple", interactive=False, elem_id=f"{n}-downloads")
    return col, [title, trans, pred, panels, stats, files]


def explore_values(r: ExploreResult, space: Any, tag: str) -> list[Any]:
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

