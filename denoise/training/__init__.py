"""Training: patch sampling, the compiled step, the loop, checkpoints and resume."""

from .config import TrainConfig
from .loop import train
from .sampler import PatchSampler
from .step import compile_step

__all__ = ["TrainConfig", "PatchSampler", "compile_step", "train"]
