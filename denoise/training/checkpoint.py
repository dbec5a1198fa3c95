"""Checkpoints: the model file written after every epoch, with what resuming needs.

Beside the weights and metadata it holds the optimiser's state variables,
the step count, the training time so far and the random generator's state
(``state.*`` arrays), so a seeded step-budgeted run gives the same weights
whether or not it was interrupted and resumed, and a time-budgeted one
resumes its learning-rate schedule where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import modelfile
from ..model import Autoencoder

__all__ = ["Checkpoint"]


class Checkpoint:
    """The checkpoint file at ``path`` (None: no checkpoints) for a model and its optimiser ``state``."""

    def __init__(self, path, state: list):
        self.path = Path(path) if path is not None else None
        self.state = state

    def restore(self, model: Autoencoder, rng: np.random.Generator) -> tuple[int, float, list]:
        """Load the weights, optimiser state and ``rng`` state if the file holds
        them; returns ``(steps done, seconds trained, history)``, ``(0, 0.0, [])``
        when there is nothing to resume."""
        if self.path is None or not self.path.is_file():
            return 0, 0.0, []
        meta, weights, st = modelfile.read_model_file(self.path)
        if "state.step" not in st:
            return 0, 0.0, []
        model.set_weights(weights)
        for v in self.state:
            v.set_value(st[v.name].astype(np.float32))
        rng.bit_generator.state = json.loads(str(st["state.rng"][()]))
        seconds = float(st["state.seconds"]) if "state.seconds" in st else 0.0
        return int(st["state.step"]), seconds, list(meta.get("history", []))

    def save(self, model: Autoencoder, rng: np.random.Generator, done: int, seconds: float) -> None:
        """Write the model with the optimiser's state, ``done`` steps in
        ``seconds`` of training (all calls) and ``rng``'s state."""
        if self.path is None:
            return
        extra = {v.name: v.get_value() for v in self.state}
        extra["state.step"] = np.array(done)
        extra["state.seconds"] = np.array(seconds)
        extra["state.rng"] = np.array(json.dumps(rng.bit_generator.state))
        modelfile.save_model(model, self.path, extra=extra)
