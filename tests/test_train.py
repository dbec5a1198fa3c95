import numpy as np
import pytest

import denoise
from denoise.noise import parse
from denoise.patches import DIHEDRAL, dihedral
from denoise.train import PatchSampler

from .conftest import TINY, step_rows


def _cfg(**kw):
    base = dict(noise="gaussian:10-40", steps=60, epoch_steps=30, batch_size=64, val_patches=512, progress=False, seed=5)
    base.update(kw)
    return denoise.TrainConfig(**base)


def test_training_lowers_validation_error(training_photos):
    model = denoise.train(TINY, training_photos[:1], _cfg(steps=300, epoch_steps=100, lr=3e-3), val_clean=training_photos[1:])
    hist = model.meta["history"]
    assert [h[0] for h in hist] == [0, 100, 200, 300]
    assert hist[-1][2] > hist[0][2] + 1.0, hist  # validation PSNR, dB


def test_same_seed_same_weights(training_photos):
    a = denoise.train(TINY, training_photos, _cfg()).get_weights()
    b = denoise.train(TINY, training_photos, _cfg()).get_weights()
    c = denoise.train(TINY, training_photos, _cfg(seed=6)).get_weights()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_resume_equals_uninterrupted(training_photos, tmp_path):
    # a constant learning rate, so that a first call with a budget of 30 steps is the
    # first half of the 60-step run (a cosine schedule follows each call's budget)
    full = denoise.train(TINY, training_photos, _cfg(steps=60, lr_decay="none")).get_weights()
    ck = tmp_path / "m.npz"
    denoise.train(TINY, training_photos, _cfg(steps=30, lr_decay="none"), checkpoint=ck)
    # a fresh model, as a new process would build; the checkpoint restores weights, optimiser and RNG
    resumed = denoise.train(TINY, training_photos, _cfg(steps=60, lr_decay="none"), checkpoint=ck)
    assert resumed.meta["steps"] == 60
    for k in full:
        np.testing.assert_allclose(resumed.get_weights()[k], full[k], rtol=1e-6, atol=1e-7)


def test_the_loop_reads_each_loss_after_starting_the_next_step(training_photos, monkeypatch):
    # JAX returns before its step is done: the next batch is drawn meanwhile, one step in flight
    T = __import__("sys").modules["denoise.train"]
    events, real = [], T.compile_step

    class Loss:
        def __init__(self, k, value):
            self.k, self.value = k, value

        def __float__(self):
            events.append(("read", self.k))
            return float(self.value)

    def traced_compile_step(model, cfg):
        step, lr, state = real(model, cfg)

        def traced(*args):
            k = sum(kind == "start" for kind, _ in events)
            events.append(("start", k))
            return Loss(k, step(*args))

        return traced, lr, state

    monkeypatch.setattr(T, "compile_step", traced_compile_step)
    model = denoise.train(TINY, training_photos, _cfg(steps=5, epoch_steps=3))
    start, read = (lambda k: ("start", k)), (lambda k: ("read", k))
    # each epoch's last loss is read before validating and checkpointing; the run's last at its end
    assert events == [start(0), start(1), read(0), start(2), read(1), read(2), start(3), start(4), read(3), read(4)]
    assert [h[0] for h in model.meta["history"]] == [0, 3, 5] and all(h[1] > 0 for h in model.meta["history"][1:])


def test_sgd_and_paired_images(training_photos):
    clean = training_photos[:1]
    rng = np.random.default_rng(0)
    noisy = [c + rng.standard_normal(c.shape).astype(np.float32) * 0.1 for c in clean]
    model = denoise.train(TINY, clean, _cfg(optimizer="sgd", lr=0.01, steps=200, epoch_steps=100), noisy=noisy)
    hist = model.meta["history"]
    assert hist[-1][2] > hist[0][2]


def test_sampler_shapes_and_augmentation(training_photos):
    s = PatchSampler(training_photos, TINY, parse("gaussian:25"))
    x, y, sig = s.sample(32, np.random.default_rng(0))
    assert x.shape == (32, 64) and y.shape == (32, 16) and sig.shape == (32,)
    np.testing.assert_allclose(sig, 25 / 255, rtol=1e-6)
    # the clean target is the centre of the noisy input, up to the noise
    centre = x.reshape(32, 8, 8)[:, 2:6, 2:6].reshape(32, 16)
    assert np.std(centre - y) == pytest.approx(25 / 255, rel=0.15)


def _windows(images, size, channels):
    """Every (size, size, channels) window of the images (one channel at a
    time for one-channel patches), as a set of bytes."""
    found = set()
    for img in images:
        win = np.lib.stride_tricks.sliding_window_view(img, (size, size), axis=(0, 1))  # (h', w', 3, s, s)
        win = win.transpose(0, 1, 3, 4, 2) if channels == 3 else np.moveaxis(win, 2, 0)[..., None]
        found.update(w.tobytes() for w in np.ascontiguousarray(win).reshape(-1, size, size, channels))
    return found


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("augment", [False, True])
def test_sampled_patches_are_windows_of_the_images(training_photos, channels, augment):
    arch = denoise.Architecture(patch=4, context=2, channels=channels, hidden=(8,))
    rgb = [np.stack([p, 0.8 * p, 0.6 * p], axis=2) if p.ndim == 2 else p for p in training_photos]
    rgb[1] = rgb[1][:150, :120]  # images of different widths index through different offset tables
    paired = [2 * img for img in rgb]  # "noisy" = 2 x clean, exactly: shows the pairing
    s = PatchSampler(rgb, arch, parse("gaussian:25"), noisy=paired, augment=augment)
    n = 200
    x, y, sig = s.sample(n, np.random.default_rng(3))
    assert set(sig) <= {np.float32(np.std(img)) for img in rgb}  # sigma = std(noisy - clean) of the image
    rows = x.reshape(n, 8, 8, channels) / 2
    # the target is the centre of the same patch, flipped or turned with it
    np.testing.assert_array_equal(rows[:, 2:6, 2:6].reshape(n, -1), y)
    windows = _windows(rgb, 8, channels)
    used = set()
    for r in rows:
        hits = [t for t in range(len(DIHEDRAL)) if np.ascontiguousarray(dihedral(r[None], t, inverse=True)[0]).tobytes() in windows]
        assert hits, "a sampled patch is no window of any image, under any flip or turn"
        used.add(hits[0])
    assert used == (set(range(len(DIHEDRAL))) if augment else {0})
    # positions and images vary
    assert len({r.tobytes() for r in rows}) > 0.95 * n  # (a flat or clipped patch may repeat)


@pytest.mark.parametrize(
    "kw, match",
    [(dict(steps=None, epochs=None, minutes=None), "budget"), (dict(optimizer="rmsprop"), "optimizer"),
     (dict(noise="blur:3"), "noise"), (dict(batch_size=0), "batch_size")],
)
def test_bad_configs(kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


def test_images_smaller_than_a_patch_are_refused():
    with pytest.raises(ValueError, match="at least"):
        denoise.train(TINY, [np.zeros((4, 4), np.float32)], _cfg())


@pytest.mark.parametrize("backend", ["c", "jax"])
def test_training_backends_agree_with_numba(training_photos, backend):
    if backend == "jax":
        pytest.importorskip("jax")
    ref = denoise.train(TINY, training_photos, _cfg(steps=20)).get_weights()
    other = denoise.train(TINY, training_photos, _cfg(steps=20, backend=backend))
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

    from denoise.train import compile_step

    model = denoise.Autoencoder(TINY)
    step, _, _ = compile_step(model, _cfg())
    sizes = TINY.sizes
    products = [n for n in step.maker.fgraph.toposort() if isinstance(n.op, Dot)]
    layers = len(sizes) - 1
    assert len(products) == 3 * layers - 1
    forward = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert TINY.flops_per_patch() == forward
    assert TINY.training_flops_per_patch() == 2 * forward + (forward - 2 * sizes[0] * sizes[1])


def test_jax_trains_and_denoises_in_float32():
    # denoise.backends' JAX mode: PyTensor's JAX code returns a float32 sum's float64 accumulator uncast
    # (with JAX's 64-bit mode on); without the mode's cast the weights were float64 after the first step,
    # and so the outputs. (Here rather than in test_backends, which runs before test_cli: JAX's threads
    # in the test process make Python warn about each subprocess test_cli starts.)
    pytest.importorskip("jax")
    from denoise.train import compile_step

    arch = denoise.Architecture(patch=2, context=1, hidden=(6, 3, 6), noise_input=True)
    n = 32
    x, s, y = step_rows(arch, n, seed=2)
    ae = denoise.Autoencoder(arch, seed=5, backend="jax")
    step, _, state = compile_step(ae, _cfg(steps=3, batch_size=n, backend="jax"))
    assert any(node.op.__class__.__name__ == "Sum" for node in step.maker.fgraph.toposort())
    losses = [step(x, s, y) for _ in range(3)]
    assert {str(np.asarray(v).dtype) for v in losses} == {"float32"}
    for v in [*ae.params, *state]:
        assert np.asarray(v.get_value()).dtype == np.float32, v.name
    assert ae.reconstruct(x, 0.1).dtype == np.float32
    numba = denoise.Autoencoder(arch, weights=ae.get_weights())
    np.testing.assert_allclose(ae.reconstruct(x, 0.1), numba.reconstruct(x, 0.1), rtol=1e-4, atol=1e-5)
