"""The built-in simulator: determinism, shared layouts, label/depth consistency and the shift."""
from pathlib import Path

import numpy as np
import pytest

from gioada.sim import CAMERA_HEIGHT, COMPONENTS, FAR_DEPTH, Shift, render
from gioada.sim.render import FOCAL, HORIZON
from gioada.sim.scene import ROAD, SKY, TERRAIN

H, W = 48, 144


@pytest.mark.parametrize("domain", ["source", "target"])
def test_deterministic(domain):
    a, b = render(11, domain, H, W), render(11, domain, H, W)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.depth, b.depth)
    assert not np.array_equal(a.image, render(12, domain, H, W).image)


def test_matches_the_stored_reference_render():
    """(seed, domain, size, shift) -> the same sample on any machine: compared with a render stored in the
    repository (tests/data/sim_reference.npz, written by rendering seed 7 at 48×144, shift 1, in both domains).
    Floating-point maths may differ in the last bit across CPUs, so a stray pixel may differ by one level."""
    ref = np.load(Path(__file__).parent / "data" / "sim_reference.npz")
    for domain in ("source", "target"):
        s = render(7, domain, 48, 144, Shift(strength=1.0))
        assert (s.labels == ref[f"{domain}_labels"]).mean() > 0.999, domain
        assert np.allclose(s.depth, ref[f"{domain}_depth"], rtol=1e-4, atol=1e-4), domain
        diff = np.abs(s.image.astype(int) - ref[f"{domain}_image"])
        assert diff.max() <= 2 and (diff > 0).mean() < 0.001, (domain, diff.max(), (diff > 0).mean())


def test_types_and_ranges():
    s = render(3, "target", H, W)
    assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
    assert s.labels.shape == (H, W) and s.labels.dtype == np.uint8 and s.labels.max() <= 9
    assert s.depth.shape == (H, W) and s.depth.dtype == np.float32
    assert s.depth.min() > 0 and s.depth.max() <= FAR_DEPTH


def test_both_domains_share_layout_labels_and_depth():
    for seed in range(5):
        src, tgt = render(seed, "source", H, W), render(seed, "target", H, W)
        assert np.array_equal(src.labels, tgt.labels) and np.array_equal(src.depth, tgt.depth)
        assert np.abs(src.image.astype(int) - tgt.image.astype(int)).mean() > 10  # but they look different


def test_zero_shift_target_equals_source():
    assert np.array_equal(render(5, "source", H, W).image, render(5, "target", H, W, Shift(0.0)).image)


def test_shift_grows_with_strength():
    src = render(4, "source", H, W).image.astype(float)
    gaps = [np.abs(render(4, "target", H, W, Shift(s)).image - src).mean() for s in (0.25, 1.0, 2.0)]
    assert gaps[0] < gaps[1] < gaps[2]


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_changes_the_image(component):
    alone = Shift(1.0).without(*(c for c in COMPONENTS if c != component))
    none = Shift(1.0).without(*COMPONENTS)
    h, w = 96, 288
    assert np.array_equal(render(2, "target", h, w, none).image, render(2, "source", h, w).image)
    assert not np.array_equal(render(2, "target", h, w, alone).image, render(2, "source", h, w).image), component


def test_ground_depth_follows_camera_geometry():
    """Ground pixels lie on the plane Y=0: depth = f·camera height / (row - horizon row)."""
    h, w = 96, 288
    s = render(8, "source", h, w)
    rows = np.arange(h)[:, None] + 0.5
    expected = np.broadcast_to(CAMERA_HEIGHT * FOCAL * w / np.maximum(rows - HORIZON * h, 1e-6), (h, w))
    ground = np.isin(s.labels, (ROAD, TERRAIN)) & (expected < FAR_DEPTH)
    assert ground.sum() > 1000
    np.testing.assert_allclose(s.depth[ground], expected[ground], rtol=1e-4)


def test_sky_is_at_the_far_plane_and_above_the_horizon():
    s = render(9, "source", H, W)
    sky = s.labels == SKY
    assert sky.any() and np.all(s.depth[sky] == FAR_DEPTH)
    assert not sky[int(np.ceil(HORIZON * H)) + 1:].any()  # no sky below the horizon


def test_objects_are_nearer_than_the_ground_they_occlude():
    """Occlusion: wherever an object is drawn below the horizon, it is nearer than the ground there."""
    h, w = 96, 288
    for seed in range(4):
        s = render(seed, "source", h, w)
        rows = np.arange(h)[:, None] + 0.5
        ground_depth = np.broadcast_to(CAMERA_HEIGHT * FOCAL * w / np.maximum(rows - HORIZON * h, 1e-6), (h, w))
        objects = ~np.isin(s.labels, (ROAD, TERRAIN, SKY)) & (rows > HORIZON * h + 1)
        assert np.all(s.depth[objects] <= ground_depth[objects] + 1e-3)


def test_all_ten_classes_appear_across_scenes():
    seen = np.zeros(10, bool)
    for seed in range(40):
        seen[np.unique(render(seed, "source", 96, 288).labels)] = True
    assert seen.all(), np.flatnonzero(~seen)


def test_layout_is_independent_of_image_size():
    """The same scene at two sizes: the class map at the low size matches the high size's subsample."""
    big, small = render(6, "source", 128, 384), render(6, "source", 64, 192)
    agree = (big.labels[1::2, 1::2] == small.labels).mean()
    assert agree > 0.9


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(domain="real"), "domain"),
    (dict(height=2), "size"), (dict(width=100000), "size")])
def test_bad_arguments_are_refused(kwargs, message):
    args = dict(seed=1, domain="source", height=H, width=W) | kwargs
    with pytest.raises(ValueError, match=message):
        render(**args)


@pytest.mark.parametrize("strength", [-0.1, 2.5, float("nan"), "1"])
def test_bad_shift_is_refused(strength):
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        Shift(strength)


def test_unknown_shift_component_is_refused():
    with pytest.raises(ValueError, match="unknown shift component"):
        Shift().without("rain")


def test_training_validation_and_test_scenes_never_overlap():
    from gioada.config import DataConfig
    from gioada.data import GIOAdaDataModule, eval_scene_seed, train_scene_seed
    train = {train_scene_seed(s, stream, i) for s in (0, 1) for stream in ("source", "target") for i in range(500)}
    val = {eval_scene_seed(i, "val") for i in range(100_000)}
    test = {eval_scene_seed(i, "test") for i in range(100_000)}
    assert not (train & val) and not (train & test) and not (val & test)
    dm = GIOAdaDataModule(DataConfig(height=32, width=96, val_scenes=2), steps=1)
    assert dm.val_dataloader().dataset.split == "val"     # training watches val; evaluation uses test
