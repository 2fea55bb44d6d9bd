"""The gioada app: explore domain shift, watch the discriminators, fine-tune and learn GIO-Ada in a browser.

    python app.py                      # http://127.0.0.1:7860, the shipped models in assets/ and runs in runs/
    python app.py --source vkitti2:/data/vkitti2 --target kitti:/data/kitti   # explore datasets on disk

Every event has an ``api_name``, so the app can be scripted with ``gradio_client``::

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    outputs = client.predict("gioada", "source-only", 3, 1.0, api_name="/explore")  # model A, model B, scene, shift

This file is the entry point and the wiring between tabs. Each tab's widgets and events are in
``gioada.app.ui`` (``explore_tab``, ``finetune_tab``, ``learn_tab``); what they call is ``gioada.app`` (Explore,
fine-tuning runs, the live lab), which is Gradio-free.
"""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from gioada.allocator import keep_freed_memory
from gioada.app.explore import Explorer
from gioada.app.finetune import FinetuneManager, FinetuneParams, device_note, preset
from gioada.app.registry import ModelRegistry
from gioada.app.scenes import DatasetScenes, SceneSource
from gioada.app.serving import ALLOWED_HOSTS_ENV, ComputeThread, HostCheck, OnComputeThread, allowed_hosts
from gioada.app.ui.cards import hero_html
from gioada.app.ui.explore_tab import EXPLORE_CONCURRENCY, GALLERY_SCENES, ExploreTab, default_models, explore_tab
from gioada.app.ui.finetune_tab import FinetuneTab, finetune_tab
from gioada.app.ui.learn_tab import LearnTab, learn_tab, tour_step
from gioada.app.ui.widgets import NONE, SCRATCH, check_input_count, diagram_image
from gioada.app.uploads import MAX_UPLOAD_BYTES
from gioada.config import DataConfig
from gioada.pretrained import ASSETS, SHIPPED

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
/* The plots' blocks hold their legend: Gradio sizes the block to the chart and cuts the legend below it. */
.gio-plot {overflow: visible !important; margin-bottom: 28px !important;}
.gio-card {border: 1px solid #e3e6ef; border-radius: 12px; padding: 10px 12px; background: #fcfcfe;}
.gio-progress.idle {color: #667; font-size: 13.5px; padding: 8px 0;}
footer {display: none !important;}
"""
MAX_FILE_SIZE = f"{MAX_UPLOAD_BYTES // 2**20}mb"
QUEUE_SIZE = 64                  # requests waiting, at most; more are turned away at once


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
                ex = explore_tab(explorer)
            with gr.Tab("Fine-tune", id="finetune"):
                ft = finetune_tab(manager, defaults)
            with gr.Tab("Learn", id="learn") as learn_page:
                learn = learn_tab(manager, data)
        learn_page.select(**learn.arrive, api_name="lab_arrive")
        first_view = _wire_model_lists(demo, registry, ex, ft, learn)
        _wire_first_view(demo, registry, compute, explorer.scenes.kind, hero, ex, ft, learn, first_view)
        _wire_tour(tabs, registry, manager.has_depth, ex, ft, learn)

    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=2)
    demo.gioada = {"registry": registry, "explorer": explorer, "finetune": manager}  # for tests and scripts
    return demo


def _wire_first_view(demo: gr.Blocks, registry: ModelRegistry, compute: ComputeThread, scenes_kind: str,
                     hero: gr.HTML, ex: ExploreTab, ft: FinetuneTab, learn: LearnTab,
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
    first_view.then(diagram_image, None, learn.diagram, api_name="diagram")


def _wire_model_lists(demo: gr.Blocks, registry: ModelRegistry, ex: ExploreTab, ft: FinetuneTab,
                      learn: LearnTab) -> gr.events.Dependency:
    """Every model dropdown follows the registry: on load, on Refresh and after a run is saved. Returns the
    page load's chain (lists, then Explore's first scene and the models' descriptions)."""
    models, lists = [ex.model_a, ex.model_b], [ex.model_a, ex.model_b, ft.start_from, learn.lab_start]
    update = functools.partial(_model_lists, registry)
    ex.refresh.click(update, models, lists, api_name="list_models")
    first_view = demo.load(update, None, lists, api_name="on_load").then(
        **ex.explore, api_name="explore_initial").then(ex.describe, models, ex.model_info, api_name="describe_initial")
    first_view.then(**ex.prefetch_random, api_name="prefetch_random_initial")
    ft.run.then(update, models, lists, api_name="refresh_after_run")
    return first_view


def _wire_tour(tabs: gr.Tabs, registry: ModelRegistry, has_depth: bool, ex: ExploreTab, ft: FinetuneTab,
               learn: LearnTab) -> None:
    """The guided tour's buttons set up Explore (then run it), and the last one the Fine-tune tab."""
    for k, btn in enumerate(learn.tour_buttons):
        btn.click(functools.partial(tour_step, registry, k), None,
                  [tabs, ex.model_a, ex.model_b, ex.shift, ex.scene, learn.tour_md, ex.tour_box],
                  api_name=f"tour_{k + 1}").then(**ex.explore, api_name=f"tour_{k + 1}_explore").then(
            ex.describe, [ex.model_a, ex.model_b], ex.model_info, api_name=f"tour_{k + 1}_describe")
    full = preset("Full GIO-Ada", has_depth)
    learn.tour_train.click(lambda: (gr.Tabs(selected="finetune"), "Full GIO-Ada", *full), None,
                           [tabs, ft.preset, *ft.lambdas], api_name="tour_5")


# ---------------------------------------------------------------------------------------------------
# Helpers of the callbacks: gioada results -> widget values


def _model_lists(registry: ModelRegistry, a: str | None = None, b: str | None = None) -> tuple[Any, ...]:
    """The four model dropdowns with the registry's current choices, keeping A and B where still on offer."""
    keys, choices = registry.keys(), registry.choices()
    default_a, default_b = default_models(keys)
    a = a if a in keys else default_a
    b = b if b in keys and b != a else (default_b if default_b != a else "")
    return (gr.Dropdown(choices=choices, value=a), gr.Dropdown(choices=[NONE] + choices, value=b),
            gr.Dropdown(choices=[SCRATCH] + choices), gr.Dropdown(choices=[SCRATCH] + choices))


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False, hosts: list[str] | tuple[str, ...] = ()) -> Any:
    """Serve ``demo`` with the app's theme, upload limit and (by default) localhost only.

    Requests whose Host header is not one the app serves get a 403 (DNS rebinding): allowed are localhost,
    127.0.0.1, ::1, ``host``, ``hosts`` and the names in ``$GIOADA_ALLOWED_HOSTS``."""
    allowed = allowed_hosts(host, hosts, share=share)
    demo.validate_inputs = check_input_count      # instead of a message that reaches API callers as null
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
    warm_up(demo)
    demo.block_thread()


def warm_up(demo: gr.Blocks) -> Future:
    """Once serving: while the browser loads the page, the compute thread imports torch and loads the first
    view's models, then computes the gallery's scenes through them, so a visitor's first click on each is
    served from the view cache. The future is done when all of them are."""
    explorer = demo.gioada["explorer"]
    return explorer.preload([k for k in default_models(explorer.registry.keys()) if k], range(GALLERY_SCENES))


if __name__ == "__main__":
    main()
