import pytest
import torch

from gioada import Discriminator, ImageTransformNetwork, TaskNetwork
from gioada.networks.common import init_weights, one_hot_labels, resize_bilinear

K = 10


@pytest.mark.parametrize("output_stride", [8, 16])
def test_task_network_shapes_and_depth_range(output_stride):
    net = TaskNetwork(3, K, width=8, output_stride=output_stride)
    logits, depth = net(torch.rand(2, 3, 32, 64) * 2 - 1)
    assert logits.shape == (2, K, 32, 64)
    assert depth.shape == (2, 1, 32, 64)
    assert bool(((depth > 0) & (depth < 80)).all())


def test_task_network_pretrained_needs_a_local_file(tmp_path):
    with pytest.raises(ValueError, match="backbone_weights"):
        TaskNetwork(3, K, pretrained_backbone=True, width=8)
    with pytest.raises(FileNotFoundError):
        TaskNetwork(3, K, pretrained_backbone=True, width=8, backbone_weights=str(tmp_path / "none.safetensors"))


def test_task_network_loads_backbone_from_safetensors(tmp_path):
    from safetensors.torch import save_file
    donor = TaskNetwork(3, K, width=8)
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in donor.backbone.state_dict().items()}, str(path))
    net = TaskNetwork(3, K, pretrained_backbone=True, width=8, backbone_weights=str(path))
    for k, v in donor.backbone.state_dict().items():
        assert torch.equal(net.backbone.state_dict()[k], v)


def _reference_input() -> torch.Tensor:
    t = torch.arange(3 * 64 * 192, dtype=torch.float32).reshape(1, 3, 64, 192)
    return torch.sin(t * 0.001) * torch.cos(t * 0.0007)


def test_the_shipped_efficientnet_encoder_reproduces_the_reference_implementation():
    """Our EfficientNet-Lite0 with the shipped (float16) weights gives the features that the wheel's own code
    (efficientnet-lite-pytorch, float32 weights) gave for the same input (tests/data, written once)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    from gioada.constants import ASSETS
    from gioada.networks.efficientnet import EfficientNetLite0
    ref = json.loads((Path(__file__).parent / "data" / "efficientnet_lite0_reference.json").read_text())
    net = EfficientNetLite0(output_stride=32).eval()                 # no dilation: the reference's strides
    net.load_state_dict(load_file(ASSETS / "backbones" / "efficientnet-lite0.safetensors"))
    with torch.no_grad():
        low, high = net(_reference_input())
    assert list(low.shape) == ref["low_shape"] and list(high.shape) == ref["high_shape"]
    # Per channel, and along the image (a padding one pixel off moves the columns' means).
    for ours, theirs in ((low.mean(dim=(0, 2, 3)), ref["low_channel_means"]),
                         (high.mean(dim=(0, 2, 3)), ref["high_channel_means"]),
                         (low.mean(dim=(0, 1, 2)), ref["low_column_means"]),
                         (high.mean(dim=(0, 1)).flatten(), ref["high_spatial_means"])):
        theirs = torch.tensor(theirs)
        assert (ours - theirs).abs().max() < 0.02 * theirs.abs().max()


@pytest.mark.parametrize("output_stride", [8, 16])
def test_efficientnet_encoder_dilates_past_its_output_stride(output_stride):
    from gioada.networks.efficientnet import EfficientNetLite0
    low, high = EfficientNetLite0(output_stride)(torch.rand(2, 3, 64, 192) * 2 - 1)
    assert low.shape == (2, 24, 16, 48) and high.shape == (2, 320, 64 // output_stride, 192 // output_stride)


def test_a_checkpoint_the_key_map_does_not_place_is_refused():
    from gioada.networks.efficientnet import EfficientNetLite0, convert
    ours = EfficientNetLite0().state_dict()
    theirs = {"_conv_stem.weight": ours["stem.0.weight"], "_conv_head.weight": torch.zeros(1),
              "_blocks.0._depthwise_conv.weight": ours["blocks.0.depthwise.0.weight"]}
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 checkpoint: unplaced .*missing"):
        convert(theirs | {"_mystery.weight": torch.zeros(1)})


def test_t_starts_from_the_shipped_imagenet_encoder_and_its_norms_ignore_the_batch():
    from safetensors.torch import load_file

    from gioada.constants import ASSETS
    net = TaskNetwork(3, K, pretrained_backbone=True, width=8, encoder="efficientnet-lite0")
    shipped = load_file(ASSETS / "backbones" / "efficientnet-lite0.safetensors")
    assert all(torch.equal(net.backbone.state_dict()[k], v.float()) for k, v in shipped.items())
    net.train()
    x = torch.rand(3, 3, 32, 64) * 2 - 1
    logits, depth = net(x)
    assert logits.shape == (3, K, 32, 64) and depth.shape == (3, 1, 32, 64)
    alone = net(x[:1])[0]                                   # frozen statistics: a batch's others change nothing
    assert torch.allclose(alone, logits[:1], atol=1e-5)
    (logits.mean() + depth.mean()).backward()
    assert net.backbone.stem[0].weight.grad is not None and net.backbone.stem[1].weight.grad is not None
    with pytest.raises(ValueError, match="encoder='vgg' is invalid"):
        TaskNetwork(3, K, encoder="vgg")


def test_transform_starts_as_identity_and_keeps_range():
    g = ImageTransformNetwork(K + 4, 3, width=8)
    x = torch.rand(2, 3, 32, 64) * 1.8 - 0.9
    labels, depth = torch.randint(0, K, (2, 32, 64)), torch.rand(2, 1, 32, 64) * 80
    assert torch.allclose(g(x, labels, depth), x, atol=1e-5)
    torch.nn.init.normal_(g.head.weight, 0, 1.0)  # a trained G moves away from the identity
    y = g(x, labels, depth)
    assert y.shape == x.shape and bool((y.abs() <= 1).all()) and not torch.allclose(y, x)


def test_transform_index_and_onehot_labels_agree():
    g = ImageTransformNetwork(K + 4, 3, width=8)
    torch.nn.init.normal_(g.head.weight, 0, 0.5)
    x, depth = torch.rand(2, 3, 32, 64) * 2 - 1, torch.rand(2, 1, 32, 64) * 80
    labels = torch.randint(0, K, (2, 32, 64))
    labels[0, :4] = 255
    onehot = one_hot_labels(labels, K)
    assert onehot.shape == (2, K, 32, 64) and bool((onehot[0, :, :4] == 0).all())
    reference = torch.nn.functional.one_hot(labels.clamp(max=K - 1), K).permute(0, 3, 1, 2) * (labels != 255)[:, None]
    assert onehot.dtype == torch.float32 and torch.equal(onehot, reference.float())
    noise = torch.randn(2, 1, 32, 64)
    assert torch.equal(g(x, labels, depth, noise), g(x, onehot, depth, noise))


def test_transform_noise_varies_the_output_only_where_trained_to():
    g = ImageTransformNetwork(K + 4, 3, width=8)
    x, labels, depth = torch.rand(1, 3, 32, 64) * 2 - 1, torch.randint(0, K, (1, 32, 64)), torch.ones(1, 1, 32, 64)
    assert torch.allclose(g(x, labels, depth), g(x, labels, depth), atol=1e-6)  # identity at start
    torch.nn.init.normal_(g.head.weight, 0, 0.5)
    assert not torch.allclose(g(x, labels, depth), g(x, labels, depth))  # noise input: texture varies
    assert torch.equal(g(x, labels, depth, torch.zeros(1, 1, 32, 64)), g(x, labels, depth, torch.zeros(1, 1, 32, 64)))


def test_transform_rejects_bad_labels():
    g = ImageTransformNetwork(K + 4, 3, width=8)
    x, depth = torch.zeros(1, 3, 32, 64), torch.ones(1, 1, 32, 64)
    with pytest.raises(ValueError, match="label indices"):
        g(x, torch.full((1, 32, 64), 11), depth)
    with pytest.raises(ValueError, match="B×H×W"):
        g(x, torch.zeros(32, 64, dtype=torch.long), depth)


@pytest.mark.parametrize("channels", [3, K + 1])
def test_discriminator_outputs(channels):
    d = Discriminator(channels, width=8)
    x = torch.randn(2, channels, 32, 64)
    p = d(x)
    assert p.shape == (2, 1) and bool(((p > 0) & (p < 1)).all())
    assert d.logits_map(x).shape == (2, 1, 4, 8)
    cmap = d.confidence_map(x)
    assert cmap.shape == (2, 1, 32, 64) and bool(((cmap > 0) & (cmap < 1)).all())


def test_transform_clamps_depth_beyond_the_far_plane():
    """Real datasets store sky at e.g. 655 m: G sees it as the far plane, like the simulator's sky."""
    g = ImageTransformNetwork(K + 4, 3, width=8, max_depth=80.0)
    torch.nn.init.normal_(g.head.weight, 0, 0.5)
    x, labels, noise = torch.rand(1, 3, 32, 64) * 2 - 1, torch.randint(0, K, (1, 32, 64)), torch.zeros(1, 1, 32, 64)
    assert torch.equal(g(x, labels, torch.full((1, 1, 32, 64), 655.35), noise),
                       g(x, labels, torch.full((1, 1, 32, 64), 80.0), noise))


def test_gradients_are_finite():
    t, g, d = TaskNetwork(3, K, width=8), ImageTransformNetwork(K + 4, 3, width=8), Discriminator(3, width=8)
    torch.nn.init.normal_(g.head.weight, 0, 0.5)  # G's head starts at zero, which would stop gradients inside G
    x = torch.rand(2, 3, 32, 64) * 2 - 1
    y = g(x, torch.randint(0, K, (2, 32, 64)), torch.rand(2, 1, 32, 64) * 80)
    logits, depth = t(y)
    (logits.mean() + depth.mean() + d.logits_map(y).mean()).backward()
    for net in (t, g, d):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.stem.parameters())  # reached G's input


@pytest.mark.parametrize("shape, size", [((2, 10, 16, 48), (64, 192)), ((1, 3, 5, 7), (10, 14)), ((2, 4, 8, 24), (8, 24)),
                                         ((1, 2, 33, 40), (16, 20)), ((1, 1, 4, 12), (17, 50))])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_resize_bilinear_equals_interpolate_forward_and_backward(shape, size, layout):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).contiguous(memory_format=layout)
    x.requires_grad_()
    ours, ref = resize_bilinear(x, size), torch.nn.functional.interpolate(x, size=size, mode="bilinear",
                                                                           align_corners=False)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert ours.is_contiguous(memory_format=layout)                   # no copy to the other layout
    g = torch.randn_like(ref)
    (grad_ours,) = torch.autograd.grad(ours, x, g)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(grad_ours, grad_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("h, w", [(64, 192), (128, 384)])
def test_every_network_runs_at_the_crop_and_the_native_size(h, w):
    """Fully convolutional: trained on 64×192 crops, run on 128×384 frames (ASPP's image pooling
    averages over whatever it is given; the discriminators score each receptive field)."""
    task = TaskNetwork(3, 10, width=8, output_stride=16)
    g = ImageTransformNetwork(14, 3, width=8)
    d_in, d_out = Discriminator(3, width=8), Discriminator(11, width=8)
    image = torch.rand(1, 3, h, w) * 2 - 1
    logits, depth = task(image)
    assert logits.shape == (1, 10, h, w) and depth.shape == (1, 1, h, w)
    assert g(image, torch.zeros(1, h, w, dtype=torch.long), torch.ones(1, 1, h, w)).shape == (1, 3, h, w)
    assert d_in.logits_map(image).shape == (1, 1, h // 8, w // 8)
    assert d_out.logits_map(torch.cat([logits.softmax(1), depth / 80], 1)).shape == (1, 1, h // 8, w // 8)


def test_init_gives_the_same_weights_in_either_memory_layout():
    convs = [torch.nn.Conv2d(3, 8, 3).to(memory_format=layout) for layout in (torch.contiguous_format,
                                                                                torch.channels_last)]
    for conv in convs:
        init_weights(conv, generator=torch.Generator().manual_seed(0))
    assert convs[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(convs[0].weight, convs[1].weight)
