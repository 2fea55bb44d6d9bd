"""Explore: a scene (or an uploaded photo) through one or two trained GIOAda models.

:class:`Explorer` computes everything the app's Explore tab shows, so it can be tested and scripted
without a browser: the source image, its translation by G, the target image, the task network's
segmentation and depth next to the ground truth, per-image mIoU and depth error, and what both
discriminators think of each input (probability "real", overall and per location), as an
:class:`ExploreResult` holding one :class:`ModelView` per model.
"""
from __future__ import annotations

import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..classes import IGNORE_INDEX, LabelSpace
from ..constants import FAR_DEPTH
from ..data.synthetic import image_to_tensor, tensor_to_image
from ..inference import cpu_bf16, native_bf16, predicted_classes
from ..lazy import no_grad, torch
from ..panels import captioned, confidence_panel, depth_png, depth_with_scale, label_png, strip, upscale
from ..sim import MAX_STRENGTH, Sample
from ..viz import overlay
from .registry import ModelRegistry
from .scenes import MAX_SCENE, SceneSource, SimScenes
from .serving import FOREGROUND
from .uploads import fit_to, read_upload
from .validation import check_int, check_number

if TYPE_CHECKING:   # GIOAda imports Lightning: loaded where a model is built
    from ..module import GIOAda


@dataclass
class ModelView:
    """What one model makes of the scene. Images are H'×W'×3 uint8, ready to display; each before/after
    pair (``source``/``translation``, ``truth``/``prediction``) has one size, for a comparison slider."""

    key: str
    description: str
    source: np.ndarray | None               # the source image, captioned like the translation
    translation: np.ndarray | None          # G(source); the source itself when the model does not adapt
    truth: np.ndarray                       # ground-truth classes on the target image (an upload: the photo)
    prediction: np.ndarray                  # segmentation of the target image, overlaid on it
    panels: np.ndarray                      # predicted depth (with a scale bar) and D_in's P(real) maps, side by side
    labels_raw: np.ndarray                  # predicted classes H×W uint8 (the models' size), for downloads
    depth_raw: np.ndarray                   # predicted depth H×W float32, metres
    miou_target: float | None               # per-image mIoU (%) on the target image
    miou_source: float | None               # per-image mIoU (%) on the source image
    depth_abs_rel: float | None             # mean |pred - gt| / gt on the target image (sky excluded)
    d_in: dict[str, float]                  # input discriminator P(real): "source", "translated", "target"
    d_out: dict[str, float]                 # output discriminator P(real) for the task outputs on each
    notes: list[str] = field(default_factory=list)
    encoded: dict[str, bytes] = field(default_factory=dict, repr=False)   # the downloads' PNGs, made once


_SIM_ONLY = ("{models} learnt from the built-in simulator alone and never saw a real photograph: on a real "
             "street photo expect noise, not a segmentation (the domain gap this app is about, far wider than the "
             "simulator's own shift). Models that work on real images are trained on a dataset on disk, e.g. "
             "`python -m gioada train --source vkitti2:PATH --target kitti:PATH` (README, \"Real datasets\").")


@dataclass
class ExploreResult:
    """One scene and each model's view of it."""

    title: str
    strip: np.ndarray                       # source | target | ground truth | ground-truth depth, in one image
    models: list[ModelView]
    notes: list[str] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)          # the H×W the models saw


class Explorer:
    """The Explore tab's logic: ``scene()`` for a built-in (or dataset) scene, ``upload()`` for a photo."""

    # Finished views of recent (models, scene, shift) requests: a scene seen again is served without running
    # a network. Each holds a few 128×384 panels (about 2 MB), so the bound keeps it under ~50 MB.
    CACHE_SIZE = 24

    def __init__(self, registry: ModelRegistry, scenes: SceneSource | None = None,
                 default_size: tuple[int, int] = (64, 192), bf16: bool | None = None) -> None:
        self.registry = registry
        # bf16 on the CPU where it is native (None: ask the CPU): 1.1-1.3× faster networks; held-out mIoU
        # within 0.02 of float32, a scene's own within 0.13 (bench/bench_bf16.py); where emulated, float32.
        self.bf16 = native_bf16() if bf16 is None else bf16
        self.scenes = scenes or SimScenes()
        self.default_size = default_size
        self._views: OrderedDict[tuple, tuple[list[Any], ExploreResult]] = OrderedDict()
        self._views_lock = threading.Lock()

    def preload(self, model_keys: Sequence[str]) -> None:
        """Load ``model_keys`` before their first use (the first load imports torch and Lightning). A model
        that cannot load is skipped here: its first use reports why."""
        for key in model_keys:
            try:
                self.registry.load(key)
            except ValueError:
                pass

    def prefetch(self, model_keys: Sequence[str], index: int, shift: float = 1.0) -> None:
        """Compute scene ``index``'s view through ``model_keys`` into the view cache before anyone asks (the
        gallery's scenes, while the server is idle), so its first click is served like a second one. Not a
        foreground click: a playing lab does not wait for it. Errors are left to the click that meets them."""
        try:
            self._scene(model_keys, index, shift)
        except ValueError:
            pass

    # -- the two entry points ------------------------------------------------------------------------
    def scene(self, model_keys: Sequence[str], index: Any, shift: Any = 1.0) -> ExploreResult:
        """Scene number ``index`` at shift ``shift`` through each model in ``model_keys`` (0, 1 or 2)."""
        with FOREGROUND.active():                    # a playing lab waits for this click
            return self._scene(model_keys, index, shift)

    def _scene(self, model_keys: Sequence[str], index: Any, shift: Any) -> ExploreResult:
        index = check_int("scene", index, 0, MAX_SCENE)
        shift = check_number("shift", shift, 0.0, MAX_STRENGTH)
        keys = self._check_keys(model_keys)
        models = [(k, self.registry.load(k)) for k in keys]
        # Keyed by the models' keys and checked against the loaded objects: a run saved again under the same
        # name loads as a new object, so its old views are never served.
        cache_key = (tuple(keys), index, shift)
        with self._views_lock:
            hit = self._views.get(cache_key)
            if hit is not None and all(a is b for a, (_, b) in zip(hit[0], models)):
                self._views.move_to_end(cache_key)
                return hit[1]
        result = self._render_scene(models, index, shift)
        with self._views_lock:
            self._views[cache_key] = ([m for _, m in models], result)
            while len(self._views) > self.CACHE_SIZE:
                self._views.popitem(last=False)
        return result

    def _render_scene(self, models: list[tuple[str, Any]], index: int, shift: float) -> ExploreResult:
        keys = [k for k, _ in models]
        height, width = self._size(keys)
        source, target, title = self.scenes.get(index, shift, height, width)
        space = self.scenes.space
        max_depth = models[0][1].hparams.max_depth if models else FAR_DEPTH
        tiles = [(upscale(source.image), "Source (synthetic)"),
                 (upscale(target.image), "Target (real-style)" if self.scenes.kind == "sim" else "Target"),
                 (upscale(overlay(target.image, target.labels, 0.75, space)), "Ground truth")]
        if target.depth is not None:
            tiles.append((depth_with_scale(target.depth, max_depth), "Ground-truth depth"))
        result = ExploreResult(
            title=title, strip=strip(tiles),
            models=[_view(k, self.registry.describe(k), m, source, target, space, self.bf16) for k, m in models],
            size=(height, width))
        if not models:
            result.notes.append(_NO_MODEL)
        return result

    def upload(self, model_keys: Sequence[str], data: bytes | str | Path) -> ExploreResult:
        """An uploaded photo through each model: no ground truth and no source rendering."""
        with FOREGROUND.active():
            return self._upload(model_keys, data)

    def _upload(self, model_keys: Sequence[str], data: bytes | str | Path) -> ExploreResult:
        keys = self._check_keys(model_keys)
        image, (w, h) = read_upload(data)
        height, width = self._size(keys)
        cropped = fit_to(image, height, width)
        target = Sample(cropped, None, None)
        models = [(k, self.registry.load(k)) for k in keys]
        read = "" if image.shape[:2] == (h, w) else f", read at {image.shape[1]}×{image.shape[0]}"
        result = ExploreResult(
            title=f"Your image ({w}×{h}{read}), centre-cropped to the models' {width}:{height} aspect and resized "
                  f"to {width}×{height}: no ground truth, and no source rendering to translate",
            strip=strip([(upscale(cropped), "Your image")]),
            models=[_view(k, self.registry.describe(k), m, None, target, self.scenes.space, self.bf16)
                    for k, m in models],
            size=(height, width))
        if not models:
            result.notes.append(_NO_MODEL)
        simulated = [k for k in keys if self.registry.config(k).data.target == "sim"]
        if simulated:
            result.notes.append(_SIM_ONLY.format(models=", ".join(simulated)))
        return result

    def gallery(self, n: int = 8, shift: float = 1.0) -> list[np.ndarray]:
        """Thumbnails of scenes ``0 .. n-1`` in the target domain."""
        height, width = self.default_size
        return [self.scenes.get(i, shift, height, width)[1].image for i in range(n)]

    # -- helpers ---------------------------------------------------------------------------------------
    def _check_keys(self, model_keys: Sequence[str]) -> list[str]:
        if isinstance(model_keys, str):
            model_keys = [model_keys]
        keys = [k for k in (model_keys or []) if k]
        if len(keys) > 2:
            raise ValueError(f"compare at most two models at once, got {len(keys)}")
        space = self.scenes.space
        for k in keys:
            k_classes = self.registry.config(k).model.num_classes
            if k_classes != space.num_classes:
                raise ValueError(f"model {k!r} predicts {k_classes} classes, but these scenes are labelled in "
                                 f"{space.name} ({space.num_classes} classes): pick a model trained on that "
                                 "label space")
        return keys

    def _size(self, keys: Sequence[str]) -> tuple[int, int]:
        """Scenes are shown at the first model's training size (the size its numbers are about)."""
        if not keys:
            return self.default_size
        data = self.registry.config(keys[0]).data
        return data.height, data.width


_NO_MODEL = ("No trained model is available yet: the shipped models are missing from assets/ and no run has "
             "been saved. Train one in the Fine-tune tab (a couple of minutes on a CPU), then pick it here.")


@no_grad
def _view(key: str, description: str, model: GIOAda, source: Sample | None, target: Sample,
          space: LabelSpace, bf16: bool = False) -> ModelView:
    """Run one model on (source, target): T on source / translation / target, both discriminators; under
    bf16 autocast on the CPU when ``bf16`` (:func:`~gioada.inference.native_bf16`)."""
    from ..metrics import image_miou  # torchmetrics: already loaded with the model, not needed before
    device = next(model.parameters()).device
    hp = model.hparams
    x_t = image_to_tensor(target.image)[None].to(device)                         # 1×3×H×W
    names, images, rows = ["target"], x_t, [0]       # images: what the networks see; rows: one per name
    with cpu_bf16(device, bf16):
        if source is not None:
            x_s = image_to_tensor(source.image)[None].to(device)
            labels = torch.from_numpy(source.labels.astype(np.int64))[None].to(device)  # 1×H×W
            depth = (torch.from_numpy(source.depth)[None, None].to(device) if source.depth is not None
                     else torch.zeros_like(x_s[:, :1]))                                # 1×1×H×W
            translated = model.translate(x_s, labels, depth, seed=0)              # the same on every click
            names = ["source", "translated", "target"]
            if translated is x_s:    # no G: the translation is the source itself, seen once, its rows repeated
                images, rows = torch.cat([x_s, x_t]), [0, 0, 1]
            else:
                translated = translated.float()
                images, rows = torch.cat([x_s, translated, x_t]), [0, 1, 2]
        judged = model.judge(images)                                               # each network once
    logits, pred_depth = judged.logits[rows].float(), judged.depth[rows].float()   # n×K×H×W, n×1×H×W
    p_in, p_out = [judged.p_in[r] for r in rows], [judged.p_out[r] for r in rows]
    map_in = judged.map_in[rows].float().cpu().numpy()                             # n×H×W
    pred = predicted_classes(logits).cpu()
    t = len(names) - 1

    miou_target = miou_source = abs_rel = None
    if target.labels is not None:
        miou_target = 100 * image_miou(pred[t], torch.from_numpy(target.labels.astype(np.int64)), hp.num_classes)
    if source is not None and source.labels is not None:
        miou_source = 100 * image_miou(pred[0], torch.from_numpy(source.labels.astype(np.int64)), hp.num_classes)
    if target.depth is not None:
        abs_rel = depth_abs_rel(pred_depth[t, 0].cpu().numpy(), target.depth, target.labels, hp.max_depth)

    tiles = []
    if source is not None:
        tiles.append((map_in[1], translated[0], f"D_in on G(source): P(real) {p_in[1]:.0%}"))
    tiles.append((map_in[t], x_t[0], f"D_in on target: P(real) {p_in[t]:.0%}"))
    notes = model.switch_notes()
    depth_t = pred_depth[t, 0].cpu().numpy()
    panels = strip([(depth_with_scale(depth_t, hp.max_depth), "Predicted depth (target)"),
                    (confidence_panel(tiles), "Where D_in thinks: real or fake?")])
    return ModelView(
        key=key, description=description,
        source=captioned(upscale(source.image), "Source") if source is not None else None,
        translation=(captioned(upscale(tensor_to_image(translated[0])), "Translation G(source)")
                     if source is not None else None),
        truth=(captioned(upscale(overlay(target.image, target.labels, 0.75, space)), "Ground truth")
               if target.labels is not None else captioned(upscale(target.image), "Your image")),
        prediction=captioned(upscale(overlay(target.image, pred[t].numpy(), 0.75, space)), "Prediction on target"),
        panels=panels, labels_raw=pred[t].numpy().astype(np.uint8), depth_raw=depth_t.astype(np.float32),
        miou_target=miou_target, miou_source=miou_source, depth_abs_rel=abs_rel,
        d_in=dict(zip(names, p_in)), d_out=dict(zip(names, p_out)), notes=notes)


def depth_abs_rel(pred: np.ndarray, gt: np.ndarray, labels: np.ndarray | None, max_depth: float) -> float | None:
    """Mean absolute relative depth error over pixels with valid ground truth (sky and ignore excluded)."""
    valid = (gt > 0) & (gt < max_depth * 0.999) & np.isfinite(gt)
    if labels is not None:
        valid &= labels != IGNORE_INDEX
    if not valid.any():
        return None
    p, g = np.maximum(pred[valid], 1e-3), gt[valid]
    return float(np.mean(np.abs(p - g) / g))


DOWNLOADS = Path(tempfile.gettempdir()) / "gioada-downloads"
MAX_DOWNLOADS = 64                       # files kept in DOWNLOADS (oldest removed first)
_downloads_lock = threading.Lock()


def raw_downloads(view: ModelView, space: LabelSpace, tag: str, folder: Path = DOWNLOADS) -> list[str]:
    """``view``'s raw outputs as files: the label map as an indexed PNG with the class palette, and depth as a
    16-bit PNG in centimetres. ``tag`` names the input (e.g. "scene3"); the folder keeps the newest files only."""
    name = re.sub(r"[^a-z0-9._-]+", "-", f"{view.key}-{tag}".lower()).strip("-.")[:80]
    if not view.encoded:                    # a view served again from Explore's cache is encoded once
        view.encoded.update({"labels": label_png(view.labels_raw, space), "depth-cm": depth_png(view.depth_raw)})
    files = {folder / f"{name}-{kind}.png": data for kind, data in view.encoded.items()}
    with _downloads_lock:
        folder.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            path.write_bytes(data)
        old = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime)[:-MAX_DOWNLOADS]
        for path in old:
            path.unlink(missing_ok=True)
    return [str(p) for p in files]
