"""The ``--backend`` names and the PyTensor compile modes they select.

The Numba mode is PyTensor's with one rewrite of ours. PyTensor's Numba
backend builds every ``DimShuffle`` view (a transpose, a new axis) with
``as_strided``, which Numba types as an array of unknown layout. ``np.dot``
then copies such an array, one element at a time, before it calls the BLAS,
and elementwise loops over it do not vectorise. The rewrite swaps each
matrix transpose for :class:`FortranTranspose` (Numba code ``x.T``,
Fortran-ordered when ``x`` is C-ordered, which ``np.dot`` hands to the BLAS
as it is) and each single new axis for :class:`LayoutExpandDims`
(``np.expand_dims``, which keeps the layout). The outputs are the same as
PyTensor's own mode's; the time saved is measured by
``scripts/bench_speed.py --section backends``.

The JAX mode is PyTensor's with one rewrite of ours too. A float32 ``Sum``
accumulates in float64 (its ``acc_dtype``); PyTensor's JAX code returns the
float64 accumulator uncast, with JAX's 64-bit mode on (PyTensor turns it on
while its ``floatX`` is float64, the default). Through the gradients (a
bias's gradient is a sum over the batch) and Adam's updates, the weights
would then turn float64 after the first training step, and the loss with
them. The rewrite makes the float64
``Sum`` explicit and casts its result back, so the graph computes what it
says: float32 end to end, sums accumulated in float64.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.mode import get_mode
from pytensor.graph.rewriting.basic import node_rewriter, walking_rewriter
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.tensor.elemwise import DimShuffle
from pytensor.tensor.math import Sum

__all__ = ["BACKENDS", "compile_mode", "FortranTranspose", "LayoutExpandDims"]

#: ``--backend`` names and the PyTensor modes they select.
BACKENDS = {"numba": "NUMBA", "c": "CVM", "jax": "JAX"}

# After elementwise fusion and merging (49), before in-place rewrites (49.5 on).
_POSITION = 49.2
# After every rewrite but the last merge (100), so that none folds the cast back into the sum.
_JAX_POSITION = 99


def compile_mode(backend: str):
    """The PyTensor mode for a backend name (``numba``, ``c`` or ``jax``)."""
    try:
        name = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}") from None
    return {"NUMBA": _numba_mode, "JAX": _jax_mode}.get(name, lambda: name)()


@functools.cache
def _numba_mode():
    return get_mode("NUMBA").register((walking_rewriter("out_to_in", _layout_views), _POSITION))


@functools.cache
def _jax_mode():
    return get_mode("JAX").register((walking_rewriter("out_to_in", _sum_then_cast), _JAX_POSITION))


@node_rewriter([Sum])
def _sum_then_cast(fgraph, node):
    """A ``Sum`` whose accumulator is wider than its result as a ``Sum`` to the
    accumulator's type, then a cast (see the module's docstring)."""
    op, out = node.op, node.outputs[0]
    if op.acc_dtype in (None, out.dtype):
        return None
    return [pt.cast(Sum(axis=op.axis, dtype=op.acc_dtype, acc_dtype=op.acc_dtype)(node.inputs[0]), out.dtype)]


class _LayoutView(DimShuffle):
    """A ``DimShuffle`` view whose Numba code keeps the input's memory layout
    known to Numba (PyTensor's own ``as_strided`` loses it). Everywhere else
    it is the ``DimShuffle`` it replaces."""

    # ExternalCOp finds its C code next to the class's own module: point it at PyTensor's
    c_func_file = str(DimShuffle.get_path(Path(DimShuffle.c_func_file)))


class FortranTranspose(_LayoutView):
    """The transpose of a matrix: Fortran-ordered to Numba when the matrix is C-ordered."""


class LayoutExpandDims(_LayoutView):
    """One new axis of length 1 (a bias vector as a row, say): C-ordered to
    Numba when the input is."""


@node_rewriter([DimShuffle])
def _layout_views(fgraph, node):
    op = node.op
    if type(op) is not DimShuffle:
        return None
    if op.input_ndim == 2 and tuple(op.new_order) == (1, 0):
        return [FortranTranspose(input_ndim=2, new_order=(1, 0))(node.inputs[0])]
    if op.is_expand_dims and len(op.augment) == 1 and op.input_ndim >= 1:
        return [LayoutExpandDims(input_ndim=op.input_ndim, new_order=op.new_order)(node.inputs[0])]
    return None


@numba_basic.register_funcify_default_op_cache_key(FortranTranspose)
def _numba_fortran_transpose(op, node, **kwargs):
    @numba_basic.numba_njit
    def transpose(x):
        return x.T

    return transpose


@numba_basic.register_funcify_default_op_cache_key(LayoutExpandDims)
def _numba_expand_dims(op, node, **kwargs):
    axis = op.augment[0]

    @numba_basic.numba_njit
    def expand_dims(x):
        return np.expand_dims(x, axis)

    return expand_dims
