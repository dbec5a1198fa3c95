"""What fixes a patch model's shape: sizes, activation, normalisation; its FLOPs and weight shapes.

An :class:`Architecture` is stored in every model file, so it validates
every field: a model file is read only as far as its architecture allows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Architecture", "ACTIVATIONS", "MAX_PARAMETERS", "MAX_INPUT_PATCH"]

#: Bounds on what an architecture (and so a model file) may ask for: far above any
#: useful patch model, far below what would exhaust a machine's memory.
MAX_PARAMETERS = 50_000_000
MAX_INPUT_PATCH = 128
MAX_EXTENT = 512

#: The activation functions a model may use.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")


@dataclass(frozen=True)
class Architecture:
    """Everything that fixes a model's shape; stored in model files.

    Parameters
    ----------
    patch : int
        Side of the output patch.
    context : int
        Extra input pixels on each side: the input patch is ``patch + 2*context``.
    channels : int
        1 (applied to each colour channel in turn) or 3 (RGB jointly).
    hidden : tuple of int
        Hidden layer sizes; the middle one is the bottleneck ("code").
    activation : str
        ``relu``, ``tanh``, ``sigmoid`` or ``linear``.
    tied : bool
        Decoder weights are the encoder's transposed (needs equal input and
        output sizes and palindromic ``hidden``).
    residual : bool
        Predict the noise and subtract it from the input's central patch.
    noise_input : bool
        The noise level (sigma, [0, 1] units) is appended to each input row,
        so one model serves a range of noise levels.
    scale : float
        Normalisation: ``(row - row.mean()) * scale``.
    surround : tuple of int
        Scales of a coarse surround (:mod:`denoise.surround`): for each scale
        ``s``, the means of ``s x s`` blocks on a ``surround_grid`` square grid
        centred on the patch are appended to the input row, so the model sees
        ``s * surround_grid`` pixels across for ``surround_grid**2`` inputs.
    surround_grid : int
        Side of each scale's grid of blocks.
    neighbours : int
        Non-local grouping (:mod:`denoise.matching`): the mean of the input
        windows of the patch's ``neighbours`` most similar patches within
        ``search`` pixels (offsets on a ``search_step`` lattice) is appended
        to the input row; 0: none.
    search, search_step : int
        Radius of the search window, and the step between the offsets tried.
    colour : str
        What a 3-channel model's channels are: ``rgb``, or ``opponent``, the
        orthonormal opponent planes (:data:`denoise.imaging.OPPONENT`), which
        keep white noise white while decorrelating the picture's channels.
    """

    patch: int = 8
    context: int = 0
    channels: int = 1
    hidden: tuple[int, ...] = (512, 256, 512)
    activation: str = "relu"
    tied: bool = False
    residual: bool = True
    noise_input: bool = False
    scale: float = 4.0
    surround: tuple[int, ...] = ()
    surround_grid: int = 8
    neighbours: int = 0
    search: int = 8
    search_step: int = 2
    colour: str = "rgb"

    def __post_init__(self):
        for name in ("patch", "context", "channels"):
            if not isinstance(getattr(self, name), (int, np.integer)) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be an integer; got {getattr(self, name)!r}")
        if not isinstance(self.hidden, (tuple, list)) or not all(
            isinstance(h, (int, np.integer)) and not isinstance(h, bool) for h in self.hidden
        ):
            raise ValueError(f"hidden must be a list of integer layer sizes; got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.patch < 1 or self.context < 0:
            raise ValueError(f"patch must be >= 1 and context >= 0; got patch={self.patch}, context={self.context}")
        if self.in_patch > MAX_INPUT_PATCH:
            raise ValueError(f"patch + 2 * context must be at most {MAX_INPUT_PATCH}; got {self.in_patch}")
        if not (isinstance(self.scale, (int, float, np.floating)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a positive finite number; got {self.scale!r}")
        for name in ("tied", "residual", "noise_input"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false; got {getattr(self, name)!r}")
        if not isinstance(self.surround, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in self.surround
        ):
            raise ValueError(f"surround must be a list of positive integer scales; got {self.surround!r}")
        object.__setattr__(self, "surround", tuple(int(v) for v in self.surround))
        if not isinstance(self.surround_grid, (int, np.integer)) or isinstance(self.surround_grid, bool) or self.surround_grid < 1:
            raise ValueError(f"surround_grid must be a positive integer; got {self.surround_grid!r}")
        for v in self.surround:
            if (v * self.surround_grid - self.patch) % 2:
                raise ValueError(f"a surround grid of {self.surround_grid} blocks of {v} px and a {self.patch} px patch "
                                 "do not share a centre: their sides must differ by an even number of pixels")
        for name in ("neighbours", "search", "search_step"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (0 if name == "neighbours" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'neighbours' else 'positive'} integer; got {v!r}")
        offsets = (2 * self.search_radius + 1) ** 2 - 1
        if self.neighbours > offsets:
            raise ValueError(f"{self.neighbours} neighbours asked for, but a search of {self.search} px in steps of "
                             f"{self.search_step} tries only {offsets} offsets")
        if self.extent > MAX_EXTENT:
            raise ValueError(f"the input may depend on at most {MAX_EXTENT} x {MAX_EXTENT} pixels; this surround reaches "
                             f"{self.extent} x {self.extent}")
        if self.colour not in ("rgb", "opponent"):
            raise ValueError(f"colour must be 'rgb' or 'opponent'; got {self.colour!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3; got {self.channels}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list one or more positive layer sizes; got {self.hidden}")
        if self.n_parameters > MAX_PARAMETERS:
            raise ValueError(f"the architecture has {self.n_parameters:,} weights; at most {MAX_PARAMETERS:,} are allowed")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {self.activation!r}")
        if self.tied and (self.in_size != self.out_size or self.hidden != self.hidden[::-1]):
            raise ValueError(
                "tied weights need equal input and output sizes (context=0, noise_input=False) "
                f"and a palindromic hidden list; got in={self.in_size}, out={self.out_size}, hidden={self.hidden}"
            )

    @property
    def default_stride(self) -> int:
        """The stride a model of this shape denoises with unless told otherwise: half a patch."""
        return max(1, self.patch // 2)

    @property
    def in_patch(self) -> int:
        return self.patch + 2 * self.context

    @property
    def fine_size(self) -> int:
        """Values of the input patch (the first part of an input row)."""
        return self.in_patch**2 * self.channels

    @property
    def surround_size(self) -> int:
        """Values of the coarse surround (the rest of an input row)."""
        return len(self.surround) * self.surround_grid**2 * self.channels

    @property
    def neighbour_size(self) -> int:
        """Values of the neighbours' mean window (after the surround in an input row)."""
        return self.fine_size if self.neighbours else 0

    @property
    def in_size(self) -> int:
        return self.fine_size + self.surround_size + self.neighbour_size + int(self.noise_input)

    def surround_offset(self, scale: int) -> int:
        """Where a scale's grid of blocks starts, from the output patch's origin (zero or negative
        where it reaches beyond the patch): the grid and the patch share a centre."""
        return (self.patch - scale * self.surround_grid) // 2

    @property
    def search_radius(self) -> int:
        """Offsets the neighbour search tries each way along an axis (``search_step`` px apart)."""
        return self.search // self.search_step

    @property
    def reach(self) -> int:
        """How far beyond the output patch the input reads, on each side: the context, the surround
        or the neighbours' search."""
        matching = [self.context + self.search_radius * self.search_step] if self.neighbours else []
        return max([self.context, *(-self.surround_offset(v) for v in self.surround), *matching])

    @property
    def extent(self) -> int:
        """Side of the square of pixels one patch's input depends on."""
        return self.patch + 2 * self.reach

    @property
    def out_size(self) -> int:
        return self.patch**2 * self.channels

    @property
    def sizes(self) -> list[int]:
        return [self.in_size, *self.hidden, self.out_size]

    @property
    def n_parameters(self) -> int:
        """How many weights and biases a model of this shape has (tied weights counted once)."""
        return sum(math.prod(shape) for shape in self.parameter_shapes().values())

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The name and shape of every weight array, as :meth:`Autoencoder.get_weights` returns them."""
        s, k = self.sizes, self.n_encoder_layers
        shapes = {}
        for part, sizes in (("encoder", s[: k + 1]), ("decoder", s[k:])):
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                if part == "encoder" or not self.tied:
                    shapes[f"{part}.{i}.W"] = (a, b)
                shapes[f"{part}.{i}.b"] = (b,)
        return shapes

    @property
    def n_encoder_layers(self) -> int:
        """Layers up to and including the bottleneck."""
        return (len(self.hidden) - 1) // 2 + 1

    def flops_per_patch(self) -> int:
        """Multiply-adds x 2 of one forward pass of one patch."""
        s = self.sizes
        return 2 * sum(a * b for a, b in zip(s[:-1], s[1:]))

    def training_flops_per_patch(self) -> int:
        """Multiply-adds x 2 of one training step per patch: the forward
        pass, the weights' gradients (as many) and the gradient of every
        layer's input but the first's (nothing needs the gradient of the
        input rows, and PyTensor leaves it out): the usual "3x the forward
        pass" less the first layer's forward FLOPs."""
        s = self.sizes
        return 3 * self.flops_per_patch() - 2 * s[0] * s[1]

    def flops_per_pixel(self, stride: int) -> float:
        """Forward FLOPs per image pixel (per channel pass for 1-channel models)."""
        return self.flops_per_patch() / stride**2

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        if self.surround:
            d["surround"] = list(self.surround)
        else:  # a model without a surround is written as before it existed
            del d["surround"], d["surround_grid"]
        if not self.neighbours:  # nor one without neighbours
            del d["neighbours"], d["search"], d["search_step"]
        if self.colour == "rgb":
            del d["colour"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Architecture":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}")
        return cls(**d)
