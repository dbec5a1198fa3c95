"""The patch autoencoder: an encoder/decoder MLP over patch vectors, in PyTensor.

Written the Theano way: weights are ``pytensor.shared`` variables, the graph
is built once from symbolic inputs, and compiled once per process into a
forward function that is reused for every batch.

A model maps rows of input patches (``(patch + 2*context)**2 * channels``
values, optionally followed by the noise level) to rows of clean output
patches (``patch**2 * channels`` values). Inside the graph each input row is
normalised by its own mean and a fixed scale; a residual model predicts the
noise of the central patch and subtracts it.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt

from .architecture import Architecture
from .backends import compile_mode

__all__ = ["Encoder", "Decoder", "Autoencoder"]

_ACTIVATIONS = {
    "relu": lambda z: pt.maximum(z, 0),
    "tanh": pt.tanh,
    "sigmoid": pt.sigmoid,
    "linear": lambda z: z,
}


class _Stack:
    """Dense layers ``z = act(x @ W + b)``; the last one is linear if ``linear_out``."""

    def __init__(self, name, sizes, activation, rng, *, linear_out=False, tied_to=None, last_gain=1.0):
        self.name = name
        self.activation = activation
        self.linear_out = linear_out
        self.W, self.b = [], []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            if tied_to is None:
                gain = last_gain if (linear_out and i == len(sizes) - 2) else 1.0
                w = rng.standard_normal((a, b)) * (gain * np.sqrt(2.0 / a))
                self.W.append(pytensor.shared(w.astype(np.float32), name=f"{name}.{i}.W"))
            self.b.append(pytensor.shared(np.zeros(b, np.float32), name=f"{name}.{i}.b"))
        if tied_to is not None:
            self.W = [w.T for w in reversed(tied_to.W)]
        self.params = [v for v in (*self.W, *self.b) if isinstance(v, pytensor.compile.SharedVariable)]

    def __call__(self, x, start: int = 0):
        """Apply layers ``start, start+1, ...``; ``x`` is the input of layer ``start``."""
        n = len(self.b)
        for i in range(start, n):
            x = pt.dot(x, self.W[i]) + self.b[i]
            if not (self.linear_out and i == n - 1):
                x = _ACTIVATIONS[self.activation](x)
        return x


class Encoder(_Stack):
    """Input row -> code (the bottleneck layer's activations)."""

    def __init__(self, arch: Architecture, rng: np.random.Generator):
        super().__init__("encoder", arch.sizes[: arch.n_encoder_layers + 1], arch.activation, rng)


class Decoder(_Stack):
    """Code -> output row (linear last layer)."""

    def __init__(self, arch: Architecture, rng: np.random.Generator, encoder: Encoder | None = None):
        super().__init__(
            "decoder",
            arch.sizes[arch.n_encoder_layers :],
            arch.activation,
            rng,
            linear_out=True,
            tied_to=encoder if arch.tied else None,
            last_gain=0.1 if arch.residual else 1.0,
        )


class Autoencoder:
    """The denoising autoencoder.

    Parameters
    ----------
    arch : Architecture
    seed : int
        Seeds the weight initialisation.
    weights : dict of str to ndarray, optional
        Replaces the initial weights (see :meth:`get_weights`).
    backend : str
        ``numba`` (default), ``c`` or ``jax``: the PyTensor backend that
        compiles :meth:`reconstruct`, :meth:`encode` and :meth:`decode`.
    meta : dict, optional
        What a model file records beside the weights: default ``stride``,
        ``noise`` spec, ``window``, ``provenance``... (see :mod:`denoise.modelfile`).

    Examples
    --------
    >>> ae = Autoencoder(Architecture(patch=4, hidden=(16, 8, 16)), seed=0)
    >>> rows = np.random.default_rng(0).random((5, 16), dtype=np.float32)
    >>> ae.reconstruct(rows).shape
    (5, 16)
    """

    def __init__(
        self,
        arch: Architecture,
        *,
        seed: int = 0,
        weights: dict | None = None,
        backend: str = "numba",
        meta: dict | None = None,
    ):
        self.arch = arch
        self.meta = dict(meta or {})
        self.backend = backend
        compile_mode(backend)
        rng = np.random.default_rng(seed)
        self.encoder = Encoder(arch, rng)
        self.decoder = Decoder(arch, rng, self.encoder)
        self.params = self.encoder.params + self.decoder.params
        if weights is not None:
            self.set_weights(weights)
        self._compiled = {}

    @property
    def stride(self) -> int:
        """The default stride for denoising (from ``meta``, else half a patch)."""
        return int(self.meta.get("stride", self.arch.default_stride))

    # ---- symbolic graph -------------------------------------------------
    def inputs(self):
        """Fresh symbolic inputs: patch rows (N, in_pixels) and noise levels (N,)."""
        return pt.matrix("rows", dtype="float32"), pt.vector("sigma", dtype="float32")

    def code(self, rows, sigma):
        """Symbolic code (bottleneck activations) of noisy input rows.

        The model sees each row centred on its mean and scaled, with the
        scaled noise level appended. That normalisation is linear, so it is
        folded into the first layer's weights rather than applied to every
        row: ``((rows - mean) * s) @ W == rows @ (s * (W - column means of W))``
        and the noise level's row of ``W`` becomes a per-row bias. The big
        matrix product then reads the rows as they come, with no centring or
        concatenation pass over the batch (the folded weights are recomputed
        from the shared ones on each call: a few thousand values per batch,
        and training differentiates through them). Numba and JAX compile
        this form; the C backend, which runs it slower, normalises the rows."""
        arch = self.arch
        s = np.float32(arch.scale)
        if self.backend == "c":
            # PyTensor's C backend does not fuse the folded form well (bench_speed.py
            # --section backends), so it normalises the rows as written
            x = (rows - pt.mean(rows, axis=1, keepdims=True)) * s
            if arch.noise_input:
                x = pt.concatenate([x, (sigma * s)[:, None]], axis=1)
            return self.encoder(x)
        n = arch.in_size - int(arch.noise_input)
        w = self.encoder.W[0]
        wx = w[:n] if arch.noise_input else w
        z = pt.dot(rows, s * (wx - pt.mean(wx, axis=0, keepdims=True))) + self.encoder.b[0]
        if arch.noise_input:
            z = z + (sigma * s)[:, None] * w[n]
        return self.encoder(_ACTIVATIONS[arch.activation](z), start=1)

    def output(self, rows, sigma):
        """Symbolic clean output rows from noisy input rows."""
        arch = self.arch
        y = self.decoder(self.code(rows, sigma)) / np.float32(arch.scale)
        if not arch.residual:
            return y + pt.mean(rows, axis=1, keepdims=True)
        fine = rows[:, : arch.fine_size] if arch.fine_size < arch.in_size - int(arch.noise_input) else rows
        if arch.context:
            p, c, k = arch.in_patch, arch.channels, arch.context
            centre = fine.reshape((-1, p, p, c))[:, k : k + arch.patch, k : k + arch.patch, :]
            return centre.reshape((-1, arch.out_size)) - y
        return fine - y

    # ---- compiled functions ------------------------------------------------
    def _function(self, which: str):
        if which not in self._compiled:
            rows, sigma = self.inputs()
            code = pt.matrix("code", dtype="float32")
            graphs = {
                "reconstruct": ([rows, sigma], self.output(rows, sigma)),
                "encode": ([rows, sigma], self.code(rows, sigma)),
                "decode": ([code], self.decoder(code)),
            }
            ins, out = graphs[which]
            self._compiled[which] = pytensor.function(
                ins, out, mode=compile_mode(self.backend), on_unused_input="ignore"
            )
        return self._compiled[which]

    def _rows(self, rows, sigma):
        rows = np.asarray(rows, dtype=np.float32)
        n_in = self.arch.in_size - int(self.arch.noise_input)
        if rows.ndim != 2 or rows.shape[1] != n_in:
            raise ValueError(f"expected rows of shape (N, {n_in}); got {rows.shape}")
        if sigma is None:
            if self.arch.noise_input:
                raise ValueError("this model takes the noise level as input: pass sigma")
            sigma = 0.0
        s = np.broadcast_to(np.asarray(sigma, np.float32), (rows.shape[0],))
        return rows, np.ascontiguousarray(s)

    def reconstruct(self, rows, sigma=None) -> np.ndarray:
        """Clean output rows (N, out_size) from noisy input rows (N, in_pixels).

        ``sigma`` (one value or one per row, [0, 1] units) is required by
        models with ``noise_input`` and ignored by others."""
        return np.asarray(self._function("reconstruct")(*self._rows(rows, sigma)))

    def encode(self, rows, sigma=None) -> np.ndarray:
        """The code (bottleneck activations) of input rows."""
        return np.asarray(self._function("encode")(*self._rows(rows, sigma)))

    def decode(self, code) -> np.ndarray:
        """The decoder's output for a code, in normalised units (the predicted
        noise for residual models, the centred clean patch otherwise)."""
        return np.asarray(self._function("decode")(np.asarray(code, dtype=np.float32)))

    # ---- weights ----------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """The weights as a dict of float32 numpy arrays, keyed by name."""
        return {p.name: np.array(p.get_value(), dtype=np.float32) for p in self.params}

    def set_weights(self, weights: dict) -> None:
        """Replace the weights; names and shapes must match exactly."""
        expected = {p.name: p.get_value().shape for p in self.params}
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        if missing or extra:
            raise ValueError(f"weights do not match the architecture: missing {missing}, unexpected {extra}")
        for p in self.params:
            w = np.asarray(weights[p.name])
            if w.shape != expected[p.name]:
                raise ValueError(f"weight {p.name} has shape {w.shape}; the architecture needs {expected[p.name]}")
            if not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
                raise ValueError(f"weight {p.name} must hold finite floating-point numbers")
            p.set_value(w.astype(np.float32))
