import numpy as np
import pytest

from denoise import imaging


@pytest.mark.parametrize("planar_in", [False, True])
def test_colour_mix_reads_and_writes_either_layout(planar_in):
    rng = np.random.default_rng(0)
    m = rng.standard_normal((3, 3)).astype(np.float32)
    x = rng.random((3, 500), dtype=np.float32).T if planar_in else rng.random((500, 3), dtype=np.float32)
    out = np.empty((500, 3), np.float32) if planar_in else np.empty((3, 500), np.float32).T
    imaging._mix(x, m, out)
    np.testing.assert_allclose(out, x.astype(np.float64) @ m, rtol=1e-6, atol=1e-6)
