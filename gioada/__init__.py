"""gioada: GIO-Ada (geometrically guided input-output adaptation) with a built-in driving-scene simulator."""
from .classes import IGNORE_INDEX, VKITTI10, LabelSpace, get_label_space
from .config import DataConfig, ModelConfig, RunConfig, with_overrides
from .module import FAKE, REAL, GIOAda
from .networks import Discriminator, ImageTransformNetwork, TaskNetwork

__version__ = "0.1.0"

__all__ = ["DataConfig", "Discriminator", "FAKE", "GIOAda", "IGNORE_INDEX", "ImageTransformNetwork", "LabelSpace",
           "ModelConfig", "REAL", "RunConfig", "TaskNetwork", "VKITTI10", "get_label_space", "with_overrides"]
