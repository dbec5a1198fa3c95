"""What decides an output besides its input: the run's settings and their key in the manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Everything besides the input that decides an output's pixels and bytes."""

    sigma: float | None = None
    stride: int | None = None
    fmt: str = "keep"
    jpeg_quality: int = 95
    tile_pixels: int = 4_000_000
    ensemble: int = 1
    strength: float = 1.0
    camera: bool = False

    def options(self) -> dict:
        """The keyword arguments of :func:`denoise.denoise_image` these settings fix."""
        return {"stride": self.stride, "ensemble": self.ensemble, "strength": self.strength, "camera": self.camera}

    def key(self, model_sha: str) -> str:
        d = {"model": model_sha, "sigma": self.sigma, "stride": self.stride, "fmt": self.fmt, "q": self.jpeg_quality}
        if self.ensemble != 1:  # keys of runs made before ensembles existed stay valid
            d["ensemble"] = self.ensemble
        if self.strength != 1:  # and before strengths did
            d["strength"] = self.strength
        if self.camera:  # and before camera photos could be declared
            d["camera"] = True
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
