"""The four GIO-Ada networks: task network T, image transform network G, and the discriminators."""
from .discriminator import Discriminator
from .task import TaskNetwork
from .transform import ImageTransformNetwork

__all__ = ["Discriminator", "ImageTransformNetwork", "TaskNetwork"]
