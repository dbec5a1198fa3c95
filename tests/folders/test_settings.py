import hashlib
import json
from pathlib import Path

from denoise.folders import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def test_plain_settings_keep_the_key_older_manifests_hold():
    # an output made before ensembles existed must still count as done with ensemble=1
    old = {"model": "abc", "sigma": None, "stride": None, "fmt": "keep", "q": 95}
    assert Settings().key("abc") == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert Settings(ensemble=2).key("abc") != Settings().key("abc")
    assert Settings(strength=1.5).key("abc") not in (Settings().key("abc"), Settings(ensemble=2).key("abc"))
    assert Settings(camera=True).key("abc") != Settings().key("abc") and Settings(camera=True).options()["camera"]
