import numpy as np
import pytest

import denoise

from ..conftest import TINY, small_config, step_rows


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["c", "jax"])
def test_training_backends_agree_with_numba(training_photos, backend):
    if backend == "jax":
        pytest.importorskip("jax")
    ref = denoise.train(TINY, training_photos, small_config(steps=20)).get_weights()
    other = denoise.train(TINY, training_photos, small_config(steps=20, backend=backend))
    for k, v in other.get_weights().items():
        assert isinstance(v, np.ndarray)
        np.testing.assert_allclose(v, ref[k], rtol=1e-3, atol=1e-5)
    img = training_photos[0][:40, :40]
    ours = denoise.denoise_image(other, img, 0.1)
    np.testing.assert_allclose(ours, denoise.denoise_image(denoise.Autoencoder(TINY, weights=ref), img, 0.1), atol=1e-4)


def test_training_flops_count_the_matrix_products_the_step_does():
    # training_flops_per_patch counts the forward pass, the weight gradients and the input gradients of
    # every layer but the first. Check that count against the compiled step: one product per layer
    # forward, one per weight gradient, one per input gradient after the first layer; each (rows, a) x
    # (a, b) or its transposes is 2ab FLOPs per row.
    from pytensor.tensor.math import Dot

    from denoise.training import compile_step

    model = denoise.Autoencoder(TINY)
    step, _, _ = compile_step(model, small_config())
    sizes = TINY.sizes
    products = [n for n in step.maker.fgraph.toposort() if isinstance(n.op, Dot)]
    layers = len(sizes) - 1
    assert len(products) == 3 * layers - 1
    forward = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert TINY.flops_per_patch() == forward
    assert TINY.training_flops_per_patch() == 2 * forward + (forward - 2 * sizes[0] * sizes[1])


@pytest.mark.slow
def test_jax_trains_and_denoises_in_float32():
    # denoise.backends' JAX mode: PyTensor's JAX code returns a float32 sum's float64 accumulator uncast
    # (with JAX's 64-bit mode on); without the mode's cast the weights were float64 after the first step,
    # and so the outputs. (Here rather than in test_backends, which runs before test_cli: JAX's threads
    # in the test process make Python warn about each subprocess test_cli starts.)
    pytest.importorskip("jax")
    from denoise.training import compile_step

    arch = denoise.Architecture(patch=2, context=1, hidden=(6, 3, 6), noise_input=True)
    n = 32
    x, s, y = step_rows(arch, n, seed=2)
    ae = denoise.Autoencoder(arch, seed=5, backend="jax")
    step, _, state = compile_step(ae, small_config(steps=3, batch_size=n, backend="jax"))
    assert any(node.op.__class__.__name__ == "Sum" for node in step.maker.fgraph.toposort())
    losses = [step(x, s, y) for _ in range(3)]
    assert {str(np.asarray(v).dtype) for v in losses} == {"float32"}
    for v in [*ae.params, *state]:
        assert np.asarray(v.get_value()).dtype == np.float32, v.name
    assert ae.reconstruct(x, 0.1).dtype == np.float32
    numba = denoise.Autoencoder(arch, weights=ae.get_weights())
    np.testing.assert_allclose(ae.reconstruct(x, 0.1), numba.reconstruct(x, 0.1), rtol=1e-4, atol=1e-5)
