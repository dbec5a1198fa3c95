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

    def key(self, model_sha: str) -> str:
        d = {"model": model_sha, "sigma": self.sigma, "stride": self.stride, "fmt": self.fmt, "q": self.jpeg_quality}
        if self.ensemble != 1:  # keys of runs made before ensembles existed stay valid
            d["ensemble"] = self.ensemble
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
