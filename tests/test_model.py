import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import denoise
from denoise.architecture import Architecture
from denoise.model import Autoencoder

from .conftest import TINY


def _rows(arch, n=6, seed=0):
    return np.random.default_rng(seed).random((n, arch.in_size - arch.noise_input), dtype=np.float32)


def test_sizes_flops_and_layers():
    a = Architecture(patch=8, context=4, hidden=(512, 256, 512), noise_input=True)
    assert a.in_size == 16 * 16 + 1 and a.out_size == 64
    assert a.flops_per_patch() == 2 * (257 * 512 + 512 * 256 + 256 * 512 + 512 * 64)
    assert a.flops_per_pixel(4) == a.flops_per_patch() / 16
    ae = Autoencoder(a)
    assert [p.name for p in ae.encoder.params] == ["encoder.0.W", "encoder.1.W", "encoder.0.b", "encoder.1.b"]
    assert ae.encode(_rows(a), 0.1).shape == (6, 256)  # the bottleneck


@pytest.mark.slow
def test_gradients_match_finite_differences():
    arch = Architecture(patch=2, context=1, hidden=(5, 3, 5), activation="tanh", noise_input=True)
    ae = Autoencoder(arch, seed=3)
    rows, sigma = ae.inputs()
    target = pt.matrix("t", dtype="float32")
    loss = pt.sum(pt.sqr(ae.output(rows, sigma) - target))
    grads = pt.grad(loss, ae.params)
    f_loss = pytensor.function([rows, sigma, target], loss)
    f_grad = pytensor.function([rows, sigma, target], grads)
    rng = np.random.default_rng(0)
    x = rng.random((4, 16), dtype=np.float32)
    s = np.full(4, 0.1, np.float32)
    t = rng.random((4, 4), dtype=np.float32)
    analytic = f_grad(x, s, t)
    eps = 1e-2
    checked = 0
    for p, g in zip(ae.params, analytic):
        w = p.get_value()
        for idx in list(np.ndindex(w.shape))[:4]:
            w2 = w.copy()
            w2[idx] += eps
            p.set_value(w2)
            up = float(f_loss(x, s, t))
            w2[idx] -= 2 * eps
            p.set_value(w2)
            down = float(f_loss(x, s, t))
            p.set_value(w)
            numeric = (up - down) / (2 * eps)
            assert numeric == pytest.approx(float(g[idx]), rel=2e-2, abs=2e-3), (p.name, idx)
            checked += 1
    assert checked >= 20


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "c"])  # the folded form, and the C backend's plain one
def test_code_is_the_encoder_on_centred_scaled_rows_with_sigma_appended(backend):
    # numba folds this normalisation into the first layer's weights; the numbers must not change
    arch = Architecture(patch=2, context=1, hidden=(7, 5, 7), noise_input=True, scale=3.0)
    ae = Autoencoder(arch, seed=4, backend=backend)
    w = ae.get_weights()
    for k in w:  # non-zero biases, so a wrongly folded bias shows
        if k.endswith(".b"):
            w[k] = np.random.default_rng(5).standard_normal(w[k].shape).astype(np.float32)
    ae.set_weights(w)
    x = _rows(arch)
    sigma = np.linspace(0.0, 0.2, len(x), dtype=np.float32)
    h = np.concatenate([(x - x.mean(axis=1, keepdims=True)) * 3.0, sigma[:, None] * 3.0], axis=1)
    for i in range(arch.n_encoder_layers):
        h = np.maximum(h @ w[f"encoder.{i}.W"] + w[f"encoder.{i}.b"], 0)
    np.testing.assert_allclose(ae.encode(x, sigma), h, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_reconstruct_is_decode_of_encode():
    arch = Architecture(patch=3, hidden=(10, 4, 10), residual=False, scale=2.0)
    ae = Autoencoder(arch, seed=1)
    x = _rows(arch)
    expected = ae.decode(ae.encode(x)) / 2.0 + x.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(ae.reconstruct(x), expected, rtol=1e-5, atol=1e-6)


def test_residual_subtracts_predicted_noise_from_the_centre():
    arch = Architecture(patch=2, context=1, hidden=(6,), residual=True, scale=1.0)
    ae = Autoencoder(arch, seed=2)
    x = _rows(arch)
    centre = x.reshape(-1, 4, 4, 1)[:, 1:3, 1:3, :].reshape(-1, 4)
    np.testing.assert_allclose(ae.reconstruct(x), centre - ae.decode(ae.encode(x)), rtol=1e-5, atol=1e-6)


def test_tied_weights_share_the_encoder():
    arch = Architecture(patch=3, hidden=(12, 5, 12), tied=True)
    ae = Autoencoder(arch)
    assert not any(p.name.startswith("decoder") and p.name.endswith(".W") for p in ae.params)
    assert ae.reconstruct(_rows(arch)).shape == (6, 9)
    with pytest.raises(ValueError, match="tied"):
        Architecture(patch=3, context=1, tied=True)


def test_noise_input_models_need_sigma():
    ae = Autoencoder(TINY)
    with pytest.raises(ValueError, match="sigma"):
        ae.reconstruct(_rows(TINY))
    with pytest.raises(ValueError, match="shape"):
        ae.reconstruct(np.zeros((3, 5), np.float32), 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["c", "jax"])
def test_backends_agree_with_numba(backend):
    if backend == "jax":
        pytest.importorskip("jax")
    x = _rows(TINY, 50)
    ref = Autoencoder(TINY, seed=4).reconstruct(x, 0.1)
    other = Autoencoder(TINY, seed=4, backend=backend).reconstruct(x, 0.1)
    np.testing.assert_allclose(other, ref, rtol=1e-4, atol=1e-5)


def test_weights_round_trip_and_mismatch():
    a, b = Autoencoder(TINY, seed=1), Autoencoder(TINY, seed=2)
    x = _rows(TINY)
    assert not np.allclose(a.reconstruct(x, 0.1), b.reconstruct(x, 0.1))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.reconstruct(x, 0.1), b.reconstruct(x, 0.1))
    w = a.get_weights()
    w["encoder.0.W"] = w["encoder.0.W"][:-1]
    with pytest.raises(ValueError, match="encoder.0.W"):
        b.set_weights(w)
    with pytest.raises(ValueError, match="missing"):
        b.set_weights({})


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        denoise.Autoencoder(TINY, backend="cuda")
