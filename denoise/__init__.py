"""denoise: a batch image denoiser that learns from examples.

A patch autoencoder written in PyTensor (Theano's maintained continuation),
trained on noisy/clean patch pairs, applied to whole images and folders.

>>> import denoise
>>> model = denoise.load_model("default")           # doctest: +SKIP
>>> clean = denoise.denoise_image(model, noisy)      # doctest: +SKIP
"""

from .distributed import denoise_folder
from .io import list_models, load_model, save_model
from .model import Architecture, Autoencoder, Decoder, Encoder
from .noise import estimate_sigma
from .pipeline import denoise_image
from .train import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "Autoencoder",
    "Decoder",
    "Encoder",
    "TrainConfig",
    "denoise_folder",
    "denoise_image",
    "estimate_sigma",
    "list_models",
    "load_model",
    "save_model",
    "train",
    "__version__",
]
