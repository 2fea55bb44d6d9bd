"""Frames larger than the training crop are predicted window by window, covering every pixel."""
import pytest
import torch

from gioada import RunConfig
from gioada.checkpoint import build_model
from gioada.config import DataConfig, ModelConfig
from gioada.inference import sliding_window, window_starts


@pytest.mark.parametrize("size, window, starts", [(128, 64, [0, 32, 64]), (384, 192, [0, 96, 192]),
                                                  (100, 64, [0, 32, 36]), (64, 64, [0]), (48, 64, [0])])
def test_windows_overlap_by_half_and_the_last_ends_flush(size, window, starts):
    assert window_starts(size, window) == starts


def _pointwise(images):
    """A per-pixel 'network' (no context): windowed prediction must equal the whole-frame one."""
    logits = torch.cat([images, -images, images[:, :1] * 2], dim=1)                     # B×7×H×W
    return logits, images[:, :1].exp()


def test_a_context_free_net_predicts_the_same_window_by_window():
    images = torch.randn(2, 3, 100, 200)
    logits, depth = sliding_window(_pointwise, images, (64, 96))
    whole_logits, whole_depth = _pointwise(images)
    assert logits.shape == whole_logits.shape and depth.shape == (2, 1, 100, 200)
    assert torch.allclose(logits.softmax(1), whole_logits.softmax(1), atol=1e-5)
    assert torch.allclose(depth, whole_depth, atol=1e-5)


def test_overlapping_windows_are_averaged():
    """A net that sees only its window's mean: a pixel's depth is the mean over the windows that cover it."""
    images = torch.zeros(1, 3, 8, 8)
    images[..., :, 4:] = 1.0                                           # right half bright
    net = lambda x: (torch.zeros(x.shape[0], 2, *x.shape[2:]), x.mean(dim=(1, 2, 3), keepdim=True).expand(  # noqa: E731
        -1, 1, *x.shape[2:]))
    _, depth = sliding_window(net, images, (8, 4))                     # windows at columns 0, 2, 4
    assert depth[0, 0, 0].tolist() == pytest.approx([0, 0, 0.25, 0.25, 0.75, 0.75, 1, 1])


def test_a_model_predicts_frames_beyond_its_training_crop_window_by_window():
    tiny = ModelConfig(task_width=8, transform_width=8, disc_width=8)
    cropped = build_model(RunConfig(model=tiny, data=DataConfig(height=64, width=128, crop_height=32, crop_width=64)))
    whole = build_model(RunConfig(model=tiny, data=DataConfig(height=64, width=128, crop_height=64, crop_width=128)))
    assert cropped.window == (32, 64) and whole.window is None
    assert DataConfig(height=64, width=128, crop_height=128, crop_width=256).window is None   # crop clipped to frame
    cropped.eval()
    frame, crop = torch.randn(1, 3, 64, 128), torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(cropped(crop), cropped.task_network(crop)))   # crop size: as is
        windowed = cropped(frame)
        expected = sliding_window(cropped.task_network, frame, (32, 64))
        assert all(torch.allclose(a, b) for a, b in zip(windowed, expected))
        assert not torch.allclose(windowed[1], cropped.task_network(frame)[1])    # not the whole-frame pass


def test_windows_go_through_the_net_a_frame_s_worth_of_pixels_at_a_time():
    """Memory stays that of one whole-frame pass: 9 windows of a quarter frame go in 3 calls (4, 4, 1)."""
    calls = []

    def net(x):
        calls.append(x.shape[0])
        return _pointwise(x)

    images = torch.randn(2, 3, 128, 384)
    logits, depth = sliding_window(net, images, (64, 192))
    assert calls == [8, 8, 2] and max(calls) * 64 * 192 <= 2 * 128 * 384
    assert torch.allclose(depth, _pointwise(images)[1], atol=1e-5)
