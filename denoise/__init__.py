"""denoise: a batch image denoiser that learns from examples.

A patch autoencoder written in PyTensor (Theano's maintained continuation),
trained on noisy/clean patch pairs, applied to whole images and folders.

>>> import denoise
>>> model = denoise.load_model("default")           # doctest: +SKIP
>>> clean = denoise.denoise_image(model, noisy)      # doctest: +SKIP
"""

from .adapt import adapt, train_noisy
from .architecture import Architecture
from .estimate import estimate_sigma
from .folders import denoise_folder
from .model import Autoencoder, Decoder, Encoder
from .modelfile import list_models, load_model, save_model
from .pipeline import denoise_image
from .training import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "Autoencoder",
    "Decoder",
    "Encoder",
    "TrainConfig",
    "adapt",
    "denoise_folder",
    "denoise_image",
    "estimate_sigma",
    "list_models",
    "load_model",
    "save_model",
    "train",
    "train_noisy",
    "__version__",
]
