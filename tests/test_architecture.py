import pytest

import denoise
from denoise.architecture import Architecture


@pytest.mark.parametrize("kw, message", [(dict(channels=2), "channels must be 1 or 3; got 2"),
                                         (dict(hidden=()), "hidden must list one or more"),
                                         (dict(activation="gelu"), "activation must be one of .* got 'gelu'"),
                                         (dict(patch=0), "patch must be >= 1")])
def test_bad_architectures(kw, message):
    with pytest.raises(ValueError, match=message):
        Architecture(**kw)


@pytest.mark.parametrize("arch", [Architecture(), Architecture(patch=4, context=2, hidden=(16, 8, 16), tied=False),
                                  Architecture(patch=4, hidden=(16, 8, 16), tied=True, noise_input=False),
                                  Architecture(channels=3, hidden=(32,), noise_input=True)])
def test_parameter_shapes_are_the_models_weights(arch):
    weights = denoise.Autoencoder(arch).get_weights()
    assert {k: v.shape for k, v in weights.items()} == arch.parameter_shapes()
    assert arch.n_parameters == sum(v.size for v in weights.values())
