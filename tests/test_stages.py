import itertools

import numpy as np

import denoise
from denoise import stages


def test_each_stage_counts_its_own_time(monkeypatch):
    clock = itertools.count(0.0, 1.0)  # every reading of the clock one second later
    monkeypatch.setattr(stages.time, "perf_counter", lambda: next(clock))
    with stages.collect() as times:
        with stages.stage("outer"):  # reads 0 ... 3
            with stages.stage("inner", work=5):  # reads 1 ... 2
                pass
        with stages.stage("inner", work=2):  # reads 4 ... 5
            pass
    assert times.seconds == {"outer": 2.0, "inner": 2.0}
    assert times.calls == {"outer": 1, "inner": 2} and times.work["inner"] == 7
    assert times.total() == 4.0 and times.first <= times.last


def test_stages_are_recorded_only_while_collected(default_model):
    x = np.random.default_rng(0).random((24, 20, 3), dtype=np.float32)
    before = denoise.denoise_image(default_model, x, 0.1)
    with stages.collect() as times:
        during = denoise.denoise_image(default_model, x, 0.1)
    np.testing.assert_array_equal(before, during)
    assert {"pad", "extract", "forward", "overlap-add", "crop", "colour transform"} <= set(times.seconds)
    assert stages.stage("anything") is stages.stage("else")  # outside: one shared do-nothing context
