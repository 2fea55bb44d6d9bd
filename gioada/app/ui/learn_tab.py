"""The Learn tab: how GIO-Ada works (the diagram and the text), the guided tour that sets up Explore, and the
live lab — the four networks training step by step on a small problem (:class:`LearnTab`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import gradio as gr

from gioada.app.finetune import FinetuneManager
from gioada.app.lab import (DEFAULT_START, LAB_BATCH, LAB_CROP, LAB_PRESETS, LabPool, LabSettings, LabView,
                            lab_preset, translation_pair)
from gioada.app.registry import ModelRegistry
from gioada.app.ui.cards import lab_html
from gioada.app.ui.widgets import PLOTS_HELP, SCRATCH, curve_plots, curve_values, diagram_image, friendly, session
from gioada.config import DataConfig

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
    ("6 · Same settings, another seed",
     "**gioada-seed1** is **gioada** trained again with every setting the same: only the random seed differs "
     "(the initial weights, the order of the scenes, G's noise). It collapsed: compare the two models' "
     "segmentation and their mIoU on the held-out set (under each name). Adversarial training is a game "
     "between G and D_in, and a small difference early on can send it somewhere else. That is why every "
     "figure in this project is a mean over seeds, and why the stabiliser screen (README) measures how often "
     "each setting collapses, not only how well its best run does.",
     ["gioada-seed1"], ["gioada"], 1.0),
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


@dataclass
class LearnTab:
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


def learn_tab(manager: FinetuneManager, data: DataConfig | None) -> LearnTab:
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
        loss_plot, p_plot = curve_plots("lab-losses", "lab-p-real")
    gr.Markdown(PLOTS_HELP, elem_classes="gio-help")
    view_outputs = [card, trans_img, maps_img, outputs_img, loss_plot, p_plot]
    sliders = [lam_in, lam_out, lam_d, lr, ratio]


    @friendly
    def pick_preset(name: str) -> tuple[Any, ...]:
        p = lab_preset(name, has_depth)
        st = p.settings
        return (f"**Watch for:** {p.watch}", st.lam_input, st.lam_output, st.lam_depth, st.lr, st.d_ratio,
                diagram_image(st.lam_input, st.lam_output, st.lam_depth))

    @friendly
    def reset(start: str, li: Any, lo: Any, ld: Any, rate: Any, r: Any, request: gr.Request) -> list[Any]:
        lab = labs.reset(session(request), start or "", LabSettings.validated(li, lo, ld, rate, r))
        return lab_values(lab.view())

    @friendly
    def arrive(start: str, li: Any, lo: Any, ld: Any, rate: Any, r: Any, request: gr.Request) -> list[Any]:
        """Opening the tab shows the start's lab at step 0 (built now if this visitor has none); a lab the
        visitor already has stays as it is."""
        try:
            labs.get(session(request))
        except ValueError:
            return reset(start, li, lo, ld, rate, r, request)
        return [gr.skip()] * len(view_outputs)

    @friendly
    def change(li: Any, lo: Any, ld: Any, rate: Any, r: Any, request: gr.Request) -> None:
        try:
            lab = labs.get(session(request))
        except ValueError:
            return None                              # no lab yet: Reset will read the sliders
        lab.update(LabSettings.validated(li, lo, ld, rate, r))

    @friendly
    def step(kind: str, request: gr.Request) -> list[Any]:
        lab = labs.get(session(request))
        lab.step_in_turn(kind)
        return lab_values(lab.view())

    @friendly
    def play(chosen_speed: str, request: gr.Request) -> Iterator[list[Any]]:
        lab = labs.get(session(request))
        if lab.playing:
            raise ValueError("this lab is already playing: press Pause first")
        lab.speed = LAB_SPEEDS.get(chosen_speed, 1)
        drawn = 0.0
        for view in lab.play(lambda: lab.speed, busy=manager.busy):
            # The curves at most once a second (the browser redraws them); the images at every refresh.
            plots = time.monotonic() - drawn > 1.0 or not lab.playing
            drawn = time.monotonic() if plots else drawn
            yield lab_values(view, plots)

    def pause(request: gr.Request) -> None:
        try:
            labs.get(session(request)).pause()
        except ValueError:
            pass

    def set_speed(chosen_speed: str, request: gr.Request) -> None:
        try:
            labs.get(session(request)).speed = LAB_SPEEDS.get(chosen_speed, 1)
        except ValueError:
            pass

    @friendly
    def lesson(k: int, start: str, request: gr.Request) -> list[Any]:
        name, preset_name, text, _ = LAB_TOUR[k]
        out: list[Any] = [gr.Markdown(f"**Lesson {name}.** {text}", visible=True)]
        if preset_name is None:
            try:
                view = labs.get(session(request)).view()
            except ValueError:
                preset_name = first
        if preset_name is not None:
            p = lab_preset(preset_name, has_depth)
            text = text or f"{p.watch} Press **Pause** when you have seen it, then **Reset**."
            st = p.settings
            view = labs.reset(session(request), start or "", st).view()
            out = [gr.Markdown(f"**Lesson {name}.** {text}", visible=True), preset_name,
                   f"**Watch for:** {p.watch}", st.lam_input, st.lam_output, st.lam_depth, st.lr, st.d_ratio]
        else:
            out += [gr.skip()] * 7
        return out + lab_values(view)

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
    return LearnTab(lab_start, tour_btns, tour_train, tour_md, diagram_img, arrive_kw)


def lab_values(view: LabView, plots: bool = True) -> list[Any]:
    curves = curve_values(view.history) if plots else [gr.skip(), gr.skip()]
    return [lab_html(view), translation_pair(view), view.maps, view.outputs, *curves]


def tour_step(registry: ModelRegistry, k: int) -> tuple[Any, ...]:
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

