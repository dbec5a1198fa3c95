"""The ``--backend`` names and the PyTensor compile modes they select.

The Numba mode gets one rewrite of ours. PyTensor's Numba backend builds
every transpose as an ``as_strided`` view, which Numba types as an array of
unknown layout, and ``np.dot`` copies such an array, one element at a time,
before it calls the BLAS. The backward pass of a dense layer multiplies by
transposed activations and weights: in a ``perf`` profile of ``fast``'s
training step (batch 512) those copies took about 16% of the main thread.
The rewrite swaps each matrix transpose for :class:`FortranTranspose`, whose
Numba code is ``x.T``: Numba knows that the transpose of a C-ordered array
is Fortran-ordered, and ``np.dot`` hands it to the BLAS as it is. A training
step took 0.81-0.86x the time (``fast`` at batch 512 and 1024, ``default``
at 1024; medians of 9 alternating rounds in one process), with the same
weights after it to float32 rounding (the BLAS may sum in another order).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pytensor.compile.mode import get_mode
from pytensor.graph.rewriting.basic import node_rewriter, walking_rewriter
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.tensor.elemwise import DimShuffle

__all__ = ["BACKENDS", "compile_mode", "FortranTranspose"]

#: ``--backend`` names and the PyTensor modes they select.
BACKENDS = {"numba": "NUMBA", "c": "CVM", "jax": "JAX"}

# After elementwise fusion and merging (49), before in-place rewrites (49.5 on).
_POSITION = 49.2


def compile_mode(backend: str):
    """The PyTensor mode for a backend name (``numba``, ``c`` or ``jax``)."""
    try:
        name = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}") from None
    return _numba_mode() if name == "NUMBA" else name


@functools.cache
def _numba_mode():
    return get_mode("NUMBA").register((walking_rewriter("out_to_in", _fortran_transposes), _POSITION))


class FortranTranspose(DimShuffle):
    """The transpose of a matrix, as a view that Numba code sees as
    Fortran-ordered when the matrix is C-ordered (see the module's notes).
    Everywhere else it is the ``DimShuffle`` it replaces."""

    # ExternalCOp finds its C code next to the class's own module: point it at PyTensor's
    c_func_file = str(DimShuffle.get_path(Path(DimShuffle.c_func_file)))

    def __init__(self):
        super().__init__(input_ndim=2, new_order=(1, 0))


@node_rewriter([DimShuffle])
def _fortran_transposes(fgraph, node):
    op = node.op
    if type(op) is DimShuffle and op.input_ndim == 2 and tuple(op.new_order) == (1, 0):
        return [FortranTranspose()(node.inputs[0])]
    return None


@numba_basic.register_funcify_default_op_cache_key(FortranTranspose)
def _numba_fortran_transpose(op, node, **kwargs):
    @numba_basic.numba_njit
    def transpose(x):
        return x.T

    return transpose
