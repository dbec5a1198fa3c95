import dataclasses

import numpy as np
import pytest

import denoise

from ..conftest import TINY, small_config


def test_training_lowers_validation_error(training_photos):
    model = denoise.train(TINY, training_photos[:1], small_config(steps=300, epoch_steps=100, lr=3e-3), val_clean=training_photos[1:])
    hist = model.meta["history"]
    assert [h[0] for h in hist] == [0, 100, 200, 300]
    assert hist[-1][2] > hist[0][2] + 1.0, hist  # validation PSNR, dB


def test_same_seed_same_weights(training_photos):
    a = denoise.train(TINY, training_photos, small_config()).get_weights()
    b = denoise.train(TINY, training_photos, small_config()).get_weights()
    c = denoise.train(TINY, training_photos, small_config(seed=6)).get_weights()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_resume_equals_uninterrupted(training_photos, tmp_path):
    # a constant learning rate, so that a first call with a budget of 30 steps is the
    # first half of the 60-step run (a cosine schedule follows each call's budget)
    full = denoise.train(TINY, training_photos, small_config(steps=60, lr_decay="none")).get_weights()
    ck = tmp_path / "m.npz"
    denoise.train(TINY, training_photos, small_config(steps=30, lr_decay="none"), checkpoint=ck)
    # a fresh model, as a new process would build; the checkpoint restores weights, optimiser and RNG
    resumed = denoise.train(TINY, training_photos, small_config(steps=60, lr_decay="none"), checkpoint=ck)
    assert resumed.meta["steps"] == 60
    for k in full:
        np.testing.assert_allclose(resumed.get_weights()[k], full[k], rtol=1e-6, atol=1e-7)


def test_the_loop_reads_each_loss_after_starting_the_next_step(training_photos, monkeypatch):
    # JAX returns before its step is done: the next batch is drawn meanwhile, one step in flight
    from denoise.training import loop as T
    events, real = [], T.compile_step

    class Loss:
        def __init__(self, k, value):
            self.k, self.value = k, value

        def __float__(self):
            events.append(("read", self.k))
            return float(self.value)

    def traced_compile_step(model, cfg, **kw):
        step, lr, state = real(model, cfg, **kw)

        def traced(*args):
            k = sum(kind == "start" for kind, _ in events)
            events.append(("start", k))
            return Loss(k, step(*args))

        return traced, lr, state

    monkeypatch.setattr(T, "compile_step", traced_compile_step)
    model = denoise.train(TINY, training_photos, small_config(steps=5, epoch_steps=3))
    start, read = (lambda k: ("start", k)), (lambda k: ("read", k))
    # each epoch's last loss is read before validating and checkpointing; the run's last at its end
    assert events == [start(0), start(1), read(0), start(2), read(1), read(2), start(3), start(4), read(3), read(4)]
    assert [h[0] for h in model.meta["history"]] == [0, 3, 5] and all(h[1] > 0 for h in model.meta["history"][1:])


def test_sgd_and_paired_images(training_photos):
    clean = training_photos[:1]
    rng = np.random.default_rng(0)
    noisy = [c + rng.standard_normal(c.shape).astype(np.float32) * 0.1 for c in clean]
    model = denoise.train(TINY, clean, small_config(optimizer="sgd", lr=0.01, steps=200, epoch_steps=100), noisy=noisy)
    hist = model.meta["history"]
    assert hist[-1][2] > hist[0][2]


@pytest.mark.parametrize(
    "kw, match",
    [(dict(steps=None, epochs=None, minutes=None), "budget"), (dict(optimizer="rmsprop"), "optimizer"),
     (dict(noise="blur:3"), "noise"), (dict(batch_size=0), "batch_size")],
)
def test_bad_configs(kw, match):
    with pytest.raises(ValueError, match=match):
        small_config(**kw)




@pytest.mark.slow
def test_a_time_budgeted_run_resumes_its_schedule_where_it_stopped(training_photos, tmp_path, monkeypatch):
    from denoise.training import loop

    seen = []
    real = loop.learning_rate
    monkeypatch.setattr(loop, "learning_rate", lambda cfg, progress: seen.append(progress) or real(cfg, progress))
    ck = tmp_path / "m.npz"
    cfg = small_config(steps=None, minutes=0.04, epoch_steps=10)
    denoise.train(TINY, training_photos, cfg, checkpoint=ck)
    first = list(seen)
    assert first[0] < 0.05 and first[-1] > 0.8  # the cosine ran over the whole budget
    seen.clear()
    denoise.train(TINY, training_photos, cfg, checkpoint=ck)  # resumed: the same budget again
    # the schedule now spans both calls' time: it picks up near the middle, not at the start
    assert 0.3 < seen[0] < 0.7 and seen[-1] > 0.8, (seen[0], seen[-1])
    assert all(b >= a for a, b in zip(seen, seen[1:]))


def test_a_model_with_a_coarse_surround_trains(training_photos):
    arch = dataclasses.replace(TINY, surround=(4,), surround_grid=4)  # a 16 px surround around a 4 px patch
    model = denoise.train(arch, training_photos[:1], small_config(steps=300, epoch_steps=100, lr=3e-3), val_clean=training_photos[1:])
    hist = model.meta["history"]
    assert model.arch.surround == (4,)
    assert hist[-1][2] > hist[0][2] + 1.0, hist
