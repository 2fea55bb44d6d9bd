import os

import pytest
import torch

# Tests run on small tensors: one thread avoids oversubscription on 2-core CI machines.
torch.set_num_threads(int(os.environ.get("GIOADA_TEST_THREADS", "1")))

K = 10


@pytest.fixture
def tiny_kwargs():
    """GIOAda kwargs for a tiny, fast model."""
    return dict(num_classes=K, init_lr=1e-3, num_epochs=1, num_steps_per_epoch=4, lam_input=0.1, lam_output=0.1,
                lam_depth=0.5, task_width=8, transform_width=8, disc_width=8)


@pytest.fixture
def batch():
    """A random batch (real, fake, labels, depths) of 2 images at 32×64."""
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 32, 64, generator=g) * 2 - 1
    fake = torch.rand(2, 3, 32, 64, generator=g) * 2 - 1
    labels = torch.randint(0, K, (2, 32, 64), generator=g)
    labels[:, :2] = 255  # some ignored pixels
    depths = torch.rand(2, 1, 32, 64, generator=g) * 79 + 1
    return real, fake, labels, depths
