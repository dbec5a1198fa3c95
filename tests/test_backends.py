
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from denoise.architecture import Architecture
from denoise.backends import BACKENDS, FortranTranspose, LayoutExpandDims, compile_mode
from denoise.model import Autoencoder
from denoise.training import TrainConfig, compile_step

from .conftest import step_rows


def _ops(f):
    return [type(n.op).__name__ for n in f.maker.fgraph.toposort()]


def test_backend_names():
    assert sorted(BACKENDS) == ["c", "jax", "numba"]
    assert compile_mode("c") == "CVM"
    assert compile_mode("jax").linker.__class__.__name__ == "JAXLinker"
    assert compile_mode("numba").linker.__class__.__name__ == "NumbaLinker"
    with pytest.raises(ValueError, match="choose one of numba, c, jax"):
        compile_mode("cuda")


@pytest.mark.filterwarnings("ignore:np.dot\\(\\) is faster on contiguous arrays")
def test_the_numba_mode_turns_transposes_and_single_new_axes_and_nothing_else():
    x, y, v = pt.matrix("x"), pt.matrix("y"), pt.vector("v")
    out = [pt.dot(x.T, y), x.T + v, x.dimshuffle(0, "x", 1).sum(axis=0), v.dimshuffle("x", 0, "x") * 2]
    ours = pytensor.function([x, y, v], out, mode=compile_mode("numba"))
    plain = pytensor.function([x, y, v], out, mode="NUMBA")  # PyTensor's own mode is left as it was
    assert {"FortranTranspose", "LayoutExpandDims"} <= set(_ops(ours))
    assert not {"FortranTranspose", "LayoutExpandDims"} & set(_ops(plain))
    assert all(n.op.new_order == (1, 0) for n in ours.maker.fgraph.toposort() if isinstance(n.op, FortranTranspose))
    assert all(len(n.op.augment) == 1 for n in ours.maker.fgraph.toposort() if isinstance(n.op, LayoutExpandDims))
    assert "DimShuffle" in _ops(ours)  # two new axes at once: PyTensor's own op
    rng = np.random.default_rng(0)
    b = rng.random((5, 4))
    # C-ordered, Fortran-ordered and strided inputs: the same answers as numpy's
    for a, c in ((rng.random((5, 3)), rng.random(5)), (np.asfortranarray(rng.random((5, 3))), rng.random(10)[::2]),
                 (rng.random((10, 6))[::2, ::2], rng.random(15)[::3])):
        want = [a.T @ b, a.T + c, a[:, None, :].sum(axis=0), c[None, :, None] * 2]
        for got, w in zip(ours(a, b, c), want):
            np.testing.assert_allclose(got, w, rtol=1e-12)


def test_training_steps_agree_with_pytensors_numba_mode():
    # tied weights: transposes in the forward pass as well as in the gradients
    arch = Architecture(patch=2, context=0, hidden=(6, 3, 6), tied=True)
    n = 64
    x, s, y = step_rows(arch, n, seed=1)
    weights = []
    for mode in (compile_mode("numba"), "NUMBA"):
        ae = Autoencoder(arch, seed=5)
        step, _, _ = compile_step(ae, TrainConfig(steps=3, batch_size=n), mode=mode)
        assert ({"FortranTranspose", "LayoutExpandDims"} <= set(_ops(step))) == (mode != "NUMBA")
        for _ in range(3):
            step(x, s, y)
        weights.append(ae.get_weights())
    for k in weights[0]:  # the BLAS may sum in another order when handed a transposed operand
        np.testing.assert_allclose(weights[0][k], weights[1][k], rtol=1e-5, atol=1e-7)
        assert not np.array_equal(weights[0][k], Autoencoder(arch, seed=5).get_weights()[k])
