"""The training step: mean squared error, its gradient, and the optimiser's
updates, compiled once into one PyTensor function.

::

    loss = mean((model.output(noisy, sigma) - clean) ** 2)
    step = pytensor.function([noisy, sigma, clean], loss, updates=adam(params, grad(loss, params)))

With ``clipped_targets``, the step takes a fourth input, each row's noise
level ``spread`` in its targets, and compares the targets with what the output
would be once noisy at that level and clipped to [0, 1]
(:func:`denoise.training.clipping.clipped_mean`; rows of spread 0 as they are).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..backends import compile_mode
from ..model import Autoencoder
from .clipping import clipped_mean
from .config import TrainConfig

__all__ = ["compile_step", "optimizer_updates", "as_targets"]


def as_targets(output, spread):
    """``output`` as the targets see it: :func:`clipped_mean` at each row's
    ``spread`` where it is positive, unchanged where it is 0 (a graph)."""
    s = spread.dimshuffle(0, "x")
    return pt.switch(s > 0, clipped_mean(output, pt.maximum(s, np.float32(1e-6)), pt), output)


def optimizer_updates(params, grads, cfg: TrainConfig, lr):
    """(updates, state shared variables) for Adam or SGD with momentum."""
    state, updates = [], []
    if cfg.optimizer == "sgd":
        for p, g in zip(params, grads):
            v = pytensor.shared(np.zeros_like(p.get_value()), name=f"state.sgd.v.{p.name}")
            v_new = np.float32(cfg.momentum) * v - lr * g
            updates += [(v, v_new), (p, p + v_new)]
            state.append(v)
        return updates, state
    b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
    t = pytensor.shared(np.float32(0), name="state.adam.t")
    t_new = t + 1
    corr = pt.sqrt(1 - b2**t_new) / (1 - b1**t_new)
    updates.append((t, t_new))
    state.append(t)
    for p, g in zip(params, grads):
        m = pytensor.shared(np.zeros_like(p.get_value()), name=f"state.adam.m.{p.name}")
        v = pytensor.shared(np.zeros_like(p.get_value()), name=f"state.adam.v.{p.name}")
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * g * g
        updates += [(m, m_new), (v, v_new), (p, p - lr * corr * m_new / (pt.sqrt(v_new) + eps))]
        state += [m, v]
    return updates, state


def compile_step(model: Autoencoder, cfg: TrainConfig, *, mode=None, clipped_targets: bool = False):
    """``(step, lr, state)``: the compiled training step ``step(noisy, sigma,
    clean) -> loss`` (``step(noisy, sigma, clean, spread)`` with
    ``clipped_targets``) that updates the weights, its learning-rate shared
    variable and the optimiser's state variables. ``mode``: a PyTensor mode
    instead of ``cfg.backend``'s (to compare backends' rewrites)."""
    rows, sigma = model.inputs()
    target = pt.matrix("clean", dtype="float32")
    output = model.output(rows, sigma)
    inputs = [rows, sigma, target]
    if clipped_targets:
        spread = pt.vector("spread", dtype="float32")
        output = as_targets(output, spread)
        inputs.append(spread)
    loss = pt.mean(pt.sqr(output - target))
    grads = pt.grad(loss, model.params)
    lr = pytensor.shared(np.float32(cfg.lr), name="lr")
    updates, state = optimizer_updates(model.params, grads, cfg, lr)
    step = pytensor.function(
        inputs, loss, updates=updates, mode=mode or compile_mode(cfg.backend), on_unused_input="ignore"
    )
    return step, lr, state
