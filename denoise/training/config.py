"""How to train: the budget, the optimiser and its schedule, the noise, the seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backends import compile_mode
from ..noise import parse_mixture

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """How to train. A budget is ``steps`` (total, counting resumed steps),
    ``epochs`` (of ``epoch_steps`` steps each) or ``minutes`` (this call);
    the first reached stops training. ``condition``: the noise level a
    noise-conditioned model is given in training, the true one or the blind
    estimate of a noisy crop, or camera noise's std (:data:`denoise.training.sampler.CONDITIONS`)."""

    noise: str = "gaussian:25"
    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None
    epoch_steps: int = 500
    batch_size: int = 512
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    lr_decay: str = "cosine"
    augment: bool = True
    seed: int = 0
    val_patches: int = 2048
    backend: str = "numba"
    condition: str = "true"
    progress: bool = True
    history: list = field(default_factory=list)

    def __post_init__(self):
        if self.steps is None and self.epochs is None and self.minutes is None:
            raise ValueError("give a training budget: steps, epochs or minutes")
        for name in ("steps", "epochs", "epoch_steps", "batch_size", "val_patches"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be positive; got {self.minutes!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}")
        if self.lr_decay not in ("cosine", "none"):
            raise ValueError(f"lr_decay must be 'cosine' or 'none'; got {self.lr_decay!r}")
        parse_mixture(self.noise)
        if self.condition not in ("true", "estimate", "std"):
            raise ValueError(f"condition must be 'true', 'estimate' or 'std' (the noise level a model is given in "
                             f"training); got {self.condition!r}")
        compile_mode(self.backend)

    @property
    def total_steps(self) -> int | None:
        options = [s for s in (self.steps, self.epochs and self.epochs * self.epoch_steps) if s]
        return min(options) if options else None
