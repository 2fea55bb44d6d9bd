"""The Fine-tune tab: a training run from the lambda sliders (a shipped model by default), streamed as it trains
— progress, curves, a preview — and its before/after on held-out scenes (:class:`FinetuneTab`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from gioada.app.finetune import (PRESETS, PREVIEW_SECONDS, FinetuneJob, FinetuneManager, FinetuneParams, Snapshot,
                                 per_class_rows, preset, preset_named)
from gioada.app.ui.cards import progress_html, result_html
from gioada.app.ui.widgets import PLOTS_HELP, SCRATCH, curve_plots, curve_values, friendly
from gioada.app.validation import LIMITS

PER_CLASS_HEADERS = ["class", "IoU before (%)", "IoU after (%)", "change"]
# A watched run's page: the progress card at most every UPDATE_SECONDS, the curves every PLOT_SECONDS. Each
# update costs the browser and the server CPU time the run would use (bench/bench_browser.py watched).
UPDATE_SECONDS = 1.5
PLOT_SECONDS = 4.5


@dataclass
class FinetuneTab:
    """The Fine-tune widgets that other tabs drive, and the run's event (to refresh the model lists after it)."""

    device: gr.Markdown          # which device runs train on: filled on page load
    preset: gr.Radio
    lambdas: list[gr.Slider]     # λ_in, λ_out, λ_depth
    start_from: gr.Dropdown
    run: gr.events.Dependency


def finetune_tab(manager: FinetuneManager, defaults: FinetuneParams) -> FinetuneTab:
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
            loss_plot, conf_plot = curve_plots("loss-plot", "conf-plot")     # stacked: each legend gets the width
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
        yield from stream(manager.start(params))

    @friendly
    def apply_preset(name: str) -> tuple[float, float, float]:
        return preset(name, has_depth)

    def stop() -> Any:
        if not manager.busy():             # nothing to stop: the card stays as this visitor sees it
            gr.Info("No run is in progress: there is nothing to stop.")
            return gr.skip()
        manager.stop()
        return progress_html(manager.current.snapshot())

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
    return FinetuneTab(device_md, preset_radio, [lam_input, lam_output, lam_depth], start_from, run)


def stream(job: FinetuneJob) -> Iterator[tuple[Any, ...]]:
    """A run's widget values as it trains; the run's failure as a gr.Error, its divergence as a warning.

    Watching must not slow the run (the server and the browser share its CPU): each update sends the
    progress line, the curves' new points at most every PLOT_SECONDS, and the rest only when it changed."""
    drawn, shown = 0.0, None
    for snap in job.updates(min_interval=UPDATE_SECONDS):
        plots = snap.finished or time.monotonic() - drawn > PLOT_SECONDS
        drawn = time.monotonic() if plots else drawn
        yield finetune_values(snap, None if snap.finished else shown, plots)   # the last one whole, for API callers
        shown = snap
    if snap.state in ("oom", "failed"):
        raise gr.Error(snap.message, print_exception=False)
    if snap.state == "diverged":
        gr.Warning(snap.message)


def finetune_values(s: Snapshot, shown: Snapshot | None = None, plots: bool = True) -> tuple[Any, ...]:
    """The Fine-tune tab's values for ``s``; what did not change since ``shown`` (the snapshot the page
    already shows) is skipped, and so are the curves unless ``plots``."""
    skip = gr.skip()
    curves = curve_values(s.history) if plots else [skip, skip]
    preview = s.preview if shown is None or s.preview is not shown.preview else skip
    if shown is None or s.before is not shown.before or s.after is not shown.after:
        result = result_html(s), pd.DataFrame(per_class_rows(s.before, s.after), columns=PER_CLASS_HEADERS)
    else:
        result = skip, skip
    return (progress_html(s), *curves, preview, *result)

