"""Explore: a scene (or an uploaded photo) through one or two trained GIOAda models.

Everything the app's Explore tab shows is computed here, so it can be tested and scripted without a
browser: the source image, its translation by G, the target image, the task network's segmentation and
depth next to the ground truth, per-image mIoU and depth error, and what both discriminators think of
each input (probability "real", overall and per location).

Untrusted input stops here: uploads are decoded under a pixel budget (:func:`load_upload`), model names
must be one of the registry's own (:class:`ModelRegistry`), and numbers are range-checked.
"""
from __future__ import annotations

import html
import io
import math
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from .checkpoint import METRICS, WEIGHTS, is_run_dir, load_model, load_run_config, read_json
from .classes import IGNORE_INDEX, VKITTI10, LabelSpace, get_label_space
from .config import DataConfig, RunConfig
from .data.synthetic import eval_scene_seed, image_to_tensor, tensor_to_image
from .inference import pick_device
from .metrics import image_miou
from .module import GIOAda
from .pretrained import ASSETS, SHIPPED
from .sim import MAX_STRENGTH, Sample, Shift, render
from .viz import colorize_confidence, colorize_depth, overlay

RUN_PREFIX = "runs/"                     # registry key of a saved run: "runs/<name>"
RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_SCENE = 10**9                        # held-out scene numbers offered: 0 .. MAX_SCENE
DISPLAY_WIDTH = 384                      # images are upscaled (nearest) to about this width for display

# Upload limits. Decoding is where a small file can cost a lot of memory ("decompression bomb"), so the
# pixel count is checked from the header before anything is decoded.
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_DECODE_PIXELS = 50_000_000           # at most ~200 MB once decoded as RGBA
MAX_HEADER_PIXELS = 1_000_000_000        # JPEGs above MAX_DECODE_PIXELS are decoded at 1/2..1/8 scale (draft)
WORK_PIXELS = 2_000_000                  # uploads are downscaled to this before anything else
MIN_SIDE = 16


# ---------------------------------------------------------------------------------------------------
# Models on offer
# ---------------------------------------------------------------------------------------------------
class ModelRegistry:
    """The models the app offers: shipped ones in ``assets_dir`` and runs saved in ``runs_dir``.

    Keys are a shipped model's name (``"gioada"``) or ``"runs/<name>"``; nothing else resolves, so a
    caller can never make the app open an arbitrary path. Models load lazily (safetensors only) and
    the last few stay cached.
    """

    def __init__(self, assets_dir: str | Path = ASSETS, runs_dir: str | Path = "runs", *,
                 device: str | torch.device = "auto", cache_size: int = 6) -> None:
        self.assets_dir, self.runs_dir = Path(assets_dir), Path(runs_dir)
        if self.runs_dir.resolve() == self.assets_dir.resolve() or \
                self.assets_dir.resolve() in self.runs_dir.resolve().parents:
            raise ValueError(f"runs_dir={self.runs_dir} lies inside the shipped models' folder {self.assets_dir}: "
                             "choose another folder, so that shipped models can never be overwritten")
        self.device = pick_device(device) if isinstance(device, str) else device
        self._cache: OrderedDict[tuple[str, int], GIOAda] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def shipped(self) -> list[str]:
        """Shipped models present on disk, in the ablation's order."""
        return [n for n in SHIPPED if is_run_dir(self.assets_dir / n)]

    def runs(self) -> list[str]:
        """Saved runs (folder names under ``runs_dir``), newest first."""
        if not self.runs_dir.is_dir():
            return []
        found = [p for p in self.runs_dir.iterdir() if RUN_NAME.match(p.name) and is_run_dir(p)]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    def keys(self) -> list[str]:
        return self.shipped() + [RUN_PREFIX + n for n in self.runs()]

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a dropdown."""
        return ([(f"{n}  ·  shipped", n) for n in self.shipped()]
                + [(f"{n}  ·  your run", RUN_PREFIX + n) for n in self.runs()])

    def resolve(self, key: str) -> Path:
        """A registry key -> its run folder; anything that is not on offer is a ValueError."""
        if not isinstance(key, str) or not key:
            raise ValueError("no model chosen: pick one from the list")
        if key in SHIPPED:
            path = self.assets_dir / key
            if not is_run_dir(path):
                raise ValueError(f"the shipped model {key!r} is not installed (no {self.assets_dir.name}/{key}/"
                                 f"{WEIGHTS}); available: {', '.join(self.keys()) or 'none yet'}")
            return path
        name = key[len(RUN_PREFIX):] if key.startswith(RUN_PREFIX) else None
        if name is None or not RUN_NAME.match(name) or not is_run_dir(self.runs_dir / name):
            raise ValueError(f"unknown model {key[:80]!r}: choose one of {', '.join(self.keys()) or '(none yet)'}")
        return self.runs_dir / name

    def load(self, key: str) -> GIOAda:
        """The model for ``key`` in eval mode on the registry's device (cached)."""
        path = self.resolve(key)
        stamp = (str(path.resolve()), (path / WEIGHTS).stat().st_mtime_ns)
        with self._lock:
            if stamp in self._cache:
                self._cache.move_to_end(stamp)
                return self._cache[stamp]
            try:
                model = load_model(path, self.device)
            except (ValueError, FileNotFoundError, TypeError) as e:
                # Name the model, not the server's folders.
                reason = str(e).replace(str(path / WEIGHTS), WEIGHTS).replace(str(path), key)
                raise ValueError(f"model {key!r} could not be loaded: {reason}") from e
            self._cache[stamp] = model
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return model

    def config(self, key: str) -> RunConfig:
        path = self.resolve(key)
        try:
            return load_run_config(path)
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"model {key!r} has an invalid config.json: {e}") from e

    def describe(self, key: str) -> str:
        """One line of Markdown: what the model is (lambdas, size, steps) and its stored target mIoU."""
        cfg = self.config(key)
        m = cfg.model
        miou = read_json(self.resolve(key), METRICS).get("target", {}).get("miou")
        parts = [f"λ_in {m.lam_input:g}", f"λ_out {m.lam_output:g}", f"λ_depth {m.lam_depth:g}",
                 f"{cfg.steps} steps at {cfg.data.height}×{cfg.data.width}"]
        if cfg.data.oracle:
            parts.insert(0, "oracle (trained on target labels)")
        if isinstance(miou, (int, float)):
            parts.append(f"held-out target mIoU {miou:.1f}%")
        return " · ".join(parts)


# ---------------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------------
class SceneSource(Protocol):
    kind: str
    space: LabelSpace

    def get(self, index: int, shift: float, height: int, width: int) -> tuple[Sample, Sample, str]:
        """(source sample, target sample, a one-line description)."""


class SimScenes:
    """Held-out scenes of the built-in simulator: the same layout in the source and target domains."""

    kind = "sim"
    space = VKITTI10

    def get(self, index: int, shift: float, height: int, width: int) -> tuple[Sample, Sample, str]:
        seed = eval_scene_seed(index)
        s = Shift(strength=shift)
        text = (f"Held-out scene #{index} (simulator seed {seed}, never used in training), "
                f"shift strength {shift:g}")
        return render(seed, "source", height, width), render(seed, "target", height, width, s), text


class DatasetScenes:
    """Validation images of datasets on disk (e.g. ``vkitti2:PATH`` -> ``kitti:PATH``).

    Source and target scenes are different photos here (real datasets are unpaired); scene ``i`` is
    item ``i`` of each split, wrapping around.
    """

    kind = "datasets"

    def __init__(self, source: str, target: str, label_space: str = "vkitti10", scenes: int = 200) -> None:
        self.source, self.target, self.scenes = source, target, scenes
        self.space = get_label_space(label_space)
        self._label_space = label_space
        self._sets: dict[tuple[str, int, int], Any] = {}
        self._lock = threading.Lock()
        self._open("target", 64, 192)  # fail now, with the loader's own message, not on the first click

    def _open(self, domain: str, height: int, width: int) -> Any:
        key = (domain, height, width)
        with self._lock:
            if key not in self._sets:
                try:
                    from .data import eval_set
                    cfg = DataConfig(source=self.source, target=self.target, label_space=self._label_space,
                                     height=height, width=width, val_scenes=self.scenes)
                    self._sets[key] = eval_set(cfg, domain)
                except ImportError as e:
                    raise ValueError(f"dataset support is not available in this installation ({e}); "
                                     "run the app without --source/--target to use the built-in simulator") from e
            return self._sets[key]

    def get(self, index: int, shift: float, height: int, width: int) -> tuple[Sample, Sample, str]:
        out = []
        for domain in ("source", "target"):
            ds = self._open(domain, height, width)
            if len(ds) == 0:
                raise ValueError(f"the {domain} dataset has no validation images")
            image, labels, depth = ds[index % len(ds)]
            depth = depth[0].numpy().astype(np.float32)
            if not np.isfinite(depth).any() or not (depth > 0).any():
                depth = None  # e.g. GTA5 has no depth
            out.append(Sample(tensor_to_image(image), labels.numpy().astype(np.uint8), depth))
        text = (f"Validation image #{index % len(self._open('target', height, width))} of "
                f"{self.source.split(':')[0]} (source) and {self.target.split(':')[0]} (target)")
        return out[0], out[1], text


# ---------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------
@dataclass
class ModelView:
    """What one model makes of the scene. Images are H'×W'×3 uint8, ready to display."""

    key: str
    description: str
    translation: np.ndarray | None          # G(source); the source itself when the model does not adapt
    prediction: np.ndarray                  # segmentation of the target image, overlaid on it
    depth: np.ndarray                       # predicted depth of the target image, with a scale bar
    confidence: np.ndarray                  # per-location P(real) maps of D_in (translation, target)
    miou_target: float | None               # per-image mIoU (%) on the target image
    miou_source: float | None               # per-image mIoU (%) on the source image
    depth_abs_rel: float | None             # mean |pred - gt| / gt on the target image (sky excluded)
    d_in: dict[str, float]                  # input discriminator P(real): "source", "translated", "target"
    d_out: dict[str, float]                 # output discriminator P(real) for the task outputs on each
    notes: list[str] = field(default_factory=list)


@dataclass
class ExploreResult:
    """One scene and each model's view of it."""

    title: str
    source: np.ndarray | None               # source-domain image (None for an upload)
    target: np.ndarray                      # target-domain image (or the upload)
    labels: np.ndarray | None               # ground-truth classes, coloured
    depth: np.ndarray | None                # ground-truth depth, with a scale bar
    models: list[ModelView]
    notes: list[str] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)          # the H×W the models saw


class Explorer:
    """The Explore tab's logic: ``scene()`` for a built-in (or dataset) scene, ``upload()`` for a photo."""

    def __init__(self, registry: ModelRegistry, scenes: SceneSource | None = None,
                 default_size: tuple[int, int] = (64, 192)) -> None:
        self.registry = registry
        self.scenes = scenes or SimScenes()
        self.default_size = default_size

    # -- the two entry points ------------------------------------------------------------------------
    def scene(self, model_keys: Sequence[str], index: Any, shift: Any = 1.0) -> ExploreResult:
        """Scene number ``index`` at shift ``shift`` through each model in ``model_keys`` (0, 1 or 2)."""
        index = check_int("scene", index, 0, MAX_SCENE)
        shift = check_number("shift", shift, 0.0, MAX_STRENGTH)
        keys = self._check_keys(model_keys)
        models = [(k, self.registry.load(k)) for k in keys]
        height, width = self._size(keys)
        source, target, title = self.scenes.get(index, shift, height, width)
        space = self.scenes.space
        max_depth = models[0][1].hparams.max_depth if models else 80.0
        result = ExploreResult(
            title=title, source=captioned(upscale(source.image), "Source (synthetic)"),
            target=captioned(upscale(target.image), "Target (real-style)" if self.scenes.kind == "sim" else "Target"),
            labels=captioned(upscale(overlay(target.image, target.labels, 0.75, space)), "Ground truth"),
            depth=(captioned(depth_with_scale(target.depth, max_depth), "Ground-truth depth")
                   if target.depth is not None else None),
            models=[_view(k, self.registry.describe(k), m, source, target, space) for k, m in models],
            size=(height, width))
        if not models:
            result.notes.append(_NO_MODEL)
        return result

    def upload(self, model_keys: Sequence[str], data: bytes | str | Path) -> ExploreResult:
        """An uploaded photo through each model: no ground truth and no source rendering."""
        keys = self._check_keys(model_keys)
        image = load_upload(data)
        height, width = self._size(keys)
        cropped = fit_to(image, height, width)
        target = Sample(cropped, None, None)
        models = [(k, self.registry.load(k)) for k in keys]
        h, w = image.shape[:2]
        result = ExploreResult(
            title=f"Your image ({w}×{h}), centre-cropped to the models' {width}:{height} aspect and resized "
                  f"to {width}×{height}: no ground truth, and no source rendering to translate",
            source=None, target=captioned(upscale(cropped), "Your image"), labels=None, depth=None,
            models=[_view(k, self.registry.describe(k), m, None, target, self.scenes.space) for k, m in models],
            size=(height, width))
        if not models:
            result.notes.append(_NO_MODEL)
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


@torch.no_grad()
def _view(key: str, description: str, model: GIOAda, source: Sample | None, target: Sample,
          space: LabelSpace) -> ModelView:
    """Run one model on (source, target): T on source / translation / target, both discriminators."""
    device = next(model.parameters()).device
    hp = model.hparams
    x_t = image_to_tensor(target.image)[None].to(device)                         # 1×3×H×W
    names = ["target"]
    batch = x_t
    if source is not None:
        x_s = image_to_tensor(source.image)[None].to(device)
        labels = torch.from_numpy(source.labels.astype(np.int64))[None].to(device)  # 1×H×W
        depth = (torch.from_numpy(source.depth)[None, None].to(device) if source.depth is not None
                 else torch.zeros_like(x_s[:, :1]))                                # 1×1×H×W
        translated = model.translate(x_s, labels, depth, seed=0)                  # the same on every click
        batch = torch.cat([x_s, translated, x_t])                                  # 3×3×H×W
        names = ["source", "translated", "target"]
    logits, pred_depth = model(batch)                                              # n×K×H×W, n×1×H×W
    outputs = model.task_outputs(logits, pred_depth)                               # n×(K+1)×H×W
    p_in = model.input_discriminator(batch)[:, 0].tolist()
    p_out = model.output_discriminator(outputs)[:, 0].tolist()
    map_in = model.input_discriminator.confidence_map(batch)[:, 0].cpu().numpy()  # n×H×W
    pred = logits.argmax(1).cpu()
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
    notes = []
    if not model.adapts:
        notes.append("No adversaries in this model (λ_in = λ_out = 0): G is bypassed, so the translation is the "
                     "source image itself, and the discriminators were never trained — their numbers mean nothing.")
    else:
        if hp.lam_input == 0:
            notes.append("λ_in = 0: the input discriminator was never trained; its numbers mean nothing.")
        if hp.lam_output == 0:
            notes.append("λ_out = 0: the output discriminator was never trained; its numbers mean nothing.")
    if hp.lam_depth == 0:
        notes.append("λ_depth = 0: trained without depth, so the depth head got no loss and its map means nothing.")
    return ModelView(
        key=key, description=description,
        translation=(captioned(upscale(tensor_to_image(translated[0])), "Translation G(source)")
                     if source is not None else None),
        prediction=captioned(upscale(overlay(target.image, pred[t].numpy(), 0.75, space)), "Prediction on target"),
        depth=captioned(depth_with_scale(pred_depth[t, 0].cpu().numpy(), hp.max_depth), "Predicted depth (target)"),
        confidence=captioned(confidence_panel(tiles), "Where D_in thinks: real or fake?"),
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


# ---------------------------------------------------------------------------------------------------
# Uploads
# ---------------------------------------------------------------------------------------------------
def load_upload(data: bytes | str | Path, *, max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """An uploaded file -> an upright H×W×3 uint8 RGB image of at most ``WORK_PIXELS`` pixels.

    Handles grayscale, palette, RGBA/LA (composited on grey), 16-bit and float, CMYK and YCbCr images,
    EXIF orientation and animations (first frame). Anything else — empty, corrupt, truncated, not an
    image, too small, or too large to decode safely — is a ValueError that says why.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise ValueError("the upload did not arrive (no file was received); please try again")
        if path.stat().st_size > max_bytes:
            raise ValueError(f"the file is {path.stat().st_size / 2**20:.1f} MB; the limit is "
                             f"{max_bytes / 2**20:.0f} MB")
        data = path.read_bytes()
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"expected an image file, got {type(data).__name__}")
    if not data:
        raise ValueError("the file is empty")
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")

    with warnings.catch_warnings():
        # PIL only warns between 89 and 179 MP; we want a clear refusal instead, checked below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ValueError("this file is not an image we can read (PNG, JPEG, WebP, BMP, TIFF or GIF); "
                             "it may be corrupt") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"the image is far too large to decode safely ({e})") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"this file could not be read as an image: it looks truncated or corrupt ({e})") from None
        w, h = im.size
        if w < MIN_SIDE or h < MIN_SIDE:
            raise ValueError(f"the image is {w}×{h} pixels: too small to segment; it must be at least "
                             f"{MIN_SIDE}×{MIN_SIDE}")
        if w * h > MAX_HEADER_PIXELS:
            raise ValueError(f"the image is {w}×{h} = {w * h / 1e6:.0f} megapixels: too large to decode safely "
                             f"(at most {MAX_HEADER_PIXELS / 1e6:.0f} MP for a JPEG, {MAX_DECODE_PIXELS / 1e6:.0f} MP "
                             "for other formats); please downscale it first")
        if w * h > WORK_PIXELS and im.format == "JPEG":
            # Decode a JPEG at 1/2, 1/4 or 1/8 scale directly: a 100 MP photo never exists in memory.
            im.draft("RGB", _fit_pixels(w, h, WORK_PIXELS))
        dw, dh = im.size
        if dw * dh > MAX_DECODE_PIXELS:
            raise ValueError(f"the image is {w}×{h} = {w * h / 1e6:.0f} megapixels: too large to decode safely "
                             f"(at most {MAX_DECODE_PIXELS / 1e6:.0f} MP for {im.format or 'this format'}); "
                             "please downscale it, or save it as JPEG")
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
            # PIL reports truncated and corrupt data with any of these.
            raise ValueError(f"the image could not be decoded: the file looks truncated or corrupt ({e})") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"the image is far too large to decode safely ({e})") from None
    im = _to_rgb_or_rgba(im)
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a malformed EXIF block is the uploader's, not a bug: keep the pixels as stored
        pass
    if im.width * im.height > WORK_PIXELS:
        im.thumbnail(_fit_pixels(im.width, im.height, WORK_PIXELS), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if im.mode == "RGBA":
        # Transparent areas become mid-grey: neither black nor white, which both read as strong evidence.
        background = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(background, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _fit_pixels(w: int, h: int, pixels: int) -> tuple[int, int]:
    s = min(1.0, math.sqrt(pixels / (w * h)))
    return max(1, int(w * s)), max(1, int(h * s))


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    """Any decodable mode -> "RGB" or "RGBA" (8 bits per channel)."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            a = a / 257.0                                     # 16-bit -> 8-bit
        else:                                                 # 32-bit int or float: stretch its own range
            lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if np.isfinite(a).any() else (0.0, 1.0)
            a = (np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12) * 255
        return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    if mode in ("RGB", "L", "1", "P", "CMYK", "YCbCr", "RGBX", "HSV"):
        return im.convert("RGB")
    raise ValueError(f"images in colour mode {mode!r} are not supported; please save it as an RGB PNG or JPEG")


def fit_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop ``image`` H×W×3 to the aspect ``width:height`` and resize it to exactly that size."""
    h, w = image.shape[:2]
    target = width / height
    if w / h > target:
        cw, ch = max(1, round(h * target)), h
    else:
        cw, ch = w, max(1, round(w / target))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = Image.fromarray(image[y0:y0 + ch, x0:x0 + cw])
    return np.array(crop.resize((width, height), Image.Resampling.LANCZOS), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------------
def font(size: int) -> ImageFont.ImageFont:
    """PIL's bundled font at ``size`` px (no system fonts needed)."""
    return ImageFont.load_default(size=size)


def captioned(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with a white caption band on top (the app shows images without separate labels)."""
    band = Image.new("RGB", (image.shape[1], 26), (255, 255, 255))
    ImageDraw.Draw(band).text((4, 4), text, fill=(30, 34, 48), font=font(16))
    return np.concatenate([np.asarray(band), image], axis=0)


def label_box(image: Image.Image, text: str, size: int = 13) -> Image.Image:
    """Write ``text`` in a white box at the top left of ``image`` (in place) and return it."""
    draw, f = ImageDraw.Draw(image), font(size)
    box = draw.textbbox((6, 4), text, font=f)
    draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(255, 255, 255))
    draw.text((6, 4), text, fill=(20, 20, 20), font=f)
    return image


def tile_row(tiles: Sequence[tuple[np.ndarray, str]], scale: int = 2) -> np.ndarray:
    """Images H×W×3 side by side, each upscaled by ``scale`` with its caption boxed at the top left."""
    out = []
    for image, text in tiles:
        out += [np.asarray(label_box(Image.fromarray(upscale(image, scale)), text)),
                np.full((image.shape[0] * scale, 4, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=1)


def display_scale(width: int) -> int:
    return max(1, round(DISPLAY_WIDTH / width))


def upscale(image: np.ndarray, scale: int | None = None) -> np.ndarray:
    """Nearest-neighbour upscale to about ``DISPLAY_WIDTH``: small renders stay crisp in the browser."""
    s = display_scale(image.shape[1]) if scale is None else scale
    return image if s == 1 else np.repeat(np.repeat(image, s, axis=0), s, axis=1)


def depth_with_scale(depth: np.ndarray, max_depth: float = 80.0) -> np.ndarray:
    """Depth H×W metres -> a coloured image with a log-scale bar (in metres) underneath."""
    image = upscale(colorize_depth(depth, max_depth))
    w = image.shape[1]
    ticks = [d for d in (1, 2, 5, 10, 20, 40, 80, 160) if d <= max_depth]
    t = np.linspace(0, 1, w)
    bar = colorize_depth(np.exp(t * np.log(max_depth))[None].repeat(10, 0), max_depth)
    strip = Image.new("RGB", (w, 32), (255, 255, 255))
    strip.paste(Image.fromarray(bar), (0, 2))
    draw, f = ImageDraw.Draw(strip), font(13)
    for d in ticks:
        x = int(round(np.log(d) / np.log(max_depth) * (w - 1)))
        draw.line([(x, 12), (x, 15)], fill=(40, 40, 40))
        label = f"{d} m" if d == ticks[-1] else str(d)
        tw = draw.textlength(label, font=f)
        draw.text((min(max(0, x - tw / 2), w - tw), 16), label, fill=(40, 40, 40), font=f)
    return np.concatenate([image, np.asarray(strip)], axis=0)


def confidence_panel(tiles: Sequence[tuple[np.ndarray, torch.Tensor, str]]) -> np.ndarray:
    """Per-location P(real) maps blended over their images, stacked, with a fake / chance / real key.

    ``tiles``: (map H×W in [0, 1], image 3×H×W in [-1, 1], caption). Blue = "real", red = "fake",
    white = 50%, where a perfectly fooled discriminator sits.
    """
    rows = []
    for prob, image, caption in tiles:
        grey = tensor_to_image(image).mean(axis=2, keepdims=True)
        blend = (0.35 * grey + 0.65 * colorize_confidence(prob)).round().astype(np.uint8)
        rows.append(np.asarray(label_box(Image.fromarray(upscale(blend)), caption, 14)))
    w = rows[0].shape[1]
    key = Image.new("RGB", (w, 30), (255, 255, 255))
    key.paste(Image.fromarray(colorize_confidence(np.linspace(0, 1, w)[None].repeat(10, 0))), (0, 2))
    draw, f = ImageDraw.Draw(key), font(13)
    draw.line([(w // 2, 0), (w // 2, 14)], fill=(0, 0, 0), width=2)
    draw.text((2, 14), "fake (0%)", fill=(40, 40, 40), font=f)
    label = "50% = chance"
    draw.text((w // 2 - draw.textlength(label, font=f) / 2, 14), label, fill=(0, 0, 0), font=f)
    draw.text((w - draw.textlength("real (100%)", font=f) - 2, 14), "real (100%)", fill=(40, 40, 40), font=f)
    gap = np.full((4, w, 3), 255, np.uint8)
    out = []
    for r in rows:
        out += [r, gap]
    return np.concatenate(out + [np.asarray(key)], axis=0)


# ---------------------------------------------------------------------------------------------------
# HTML for the app (inline styles: it renders the same in any theme)
# ---------------------------------------------------------------------------------------------------
def legend_html(space: LabelSpace = VKITTI10) -> str:
    """The classes and their colours, as a row of swatches."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin:2px 10px 2px 0;font-size:13px">'
        f'<span style="width:14px;height:14px;border-radius:3px;margin-right:5px;background:rgb{tuple(c)};'
        f'border:1px solid rgba(0,0,0,.25)"></span>{html.escape(n)}</span>'
        for n, c in zip(space.classes, space.colors))
    return f'<div style="display:flex;flex-wrap:wrap;align-items:center">{items}</div>'


def _bar(label: str, p: float | None, color: str) -> str:
    if p is None:
        return ""
    pct = max(0.0, min(100.0, 100 * p))
    return (f'<div style="display:flex;align-items:center;margin:3px 0;font-size:12.5px">'
            f'<span style="width:150px;flex:none">{html.escape(label)}</span>'
            f'<span style="position:relative;flex:1;height:14px;background:#eef0f4;border-radius:7px">'
            f'<span style="position:absolute;left:0;top:0;bottom:0;width:{pct:.1f}%;background:{color};'
            f'border-radius:7px"></span>'
            f'<span style="position:absolute;left:50%;top:-3px;bottom:-3px;border-left:2px dashed #222"></span>'
            f'</span><span style="width:48px;text-align:right;font-variant-numeric:tabular-nums">{pct:.0f}%</span>'
            f'</div>')


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}{unit}"


def stats_html(view: ModelView) -> str:
    """A card: per-image mIoU and depth error, and each discriminator's P(real) with chance marked."""
    def metric(label: str, value: str, hint: str) -> str:
        return (f'<div style="flex:1;min-width:110px;padding:6px 10px;border-radius:8px;background:#f5f6fa">'
                f'<div style="font-size:11.5px;color:#556">{label}</div>'
                f'<div style="font-size:20px;font-weight:650">{value}</div>'
                f'<div style="font-size:11px;color:#778">{hint}</div></div>')

    metrics = "".join([
        metric("mIoU on target", _fmt(view.miou_target, ".1f", "%"), "this image, real-style"),
        metric("mIoU on source", _fmt(view.miou_source, ".1f", "%"), "same scene, synthetic"),
        metric("depth abs rel", _fmt(view.depth_abs_rel, ".3f"), "target, lower is better"),
    ])
    names = {"source": "source", "translated": "G(source)", "target": "target"}
    bars = "".join(_bar(f"D_in · {names[k]}", p, "#6b7fd7") for k, p in view.d_in.items())
    bars += "".join(_bar(f"D_out · T({names[k]})", p, "#2aa198") for k, p in view.d_out.items())
    notes = "".join(f'<div style="font-size:12px;color:#8a5a00;margin-top:4px">⚠ {html.escape(n)}</div>'
                    for n in view.notes)
    return (f'<div style="display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start">'
            f'<div style="flex:1 1 300px;display:flex;gap:8px;flex-wrap:wrap">{metrics}</div>'
            f'<div style="flex:2 1 420px"><div style="font-size:12px;color:#556;margin-bottom:2px">'
            f'Discriminators: probability "real" — the dashed line is 50%, chance, where adversarial training '
            f'is meant to end</div>{bars}</div></div>{notes}')


# ---------------------------------------------------------------------------------------------------
# Validation of numbers from the UI or the API (sliders can be bypassed)
# ---------------------------------------------------------------------------------------------------
def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def check_number(name: str, value: Any, lo: float, hi: float, kind: str = "a number") -> float:
    """``value`` (a number or numeric text) as a finite float in [lo, hi], or a ValueError naming the range."""
    valid = f"expected {kind} in [{_num(lo)}, {_num(hi)}]"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name}={value!r} is not a number: {valid}")
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}={str(value)[:40]!r} is not a number: {valid}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name}={v!r} is out of range: {valid}")
    return v


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi] (floats must be whole), or a ValueError naming the valid range."""
    v = check_number(name, value, lo, hi, "an integer")
    if not v.is_integer():
        raise ValueError(f"{name}={value!r} is not a whole number: expected an integer in [{lo}, {hi}]")
    return int(v)
