#!/usr/bin/env python3
"""Train a shipped model on a lent GPU machine (the ``device`` tool), within
one short call, and bring the checkpoint back.

The device image has jax (CUDA), numba, numpy, scipy, Pillow and tqdm, but
not PyTensor; nothing can be downloaded there. So, here, ``prepare`` puts
what must travel into two git-ignored folders of the repo:

* ``.whl/``  -- PyTensor, its dependencies and zlib-ng as wheels (:data:`WHEELS`);
* ``.data/`` -- the training photos (``scripts/training_data.py``) and the
  current checkpoint, if any (``runs/NAME.ckpt.npz``), so the GPU continues
  the run that the CPU started.

Then one ``device`` run (``carry: [".whl", ".data"]``) trains and copies
the checkpoint to ``$OUT``::

    python scripts/device_train.py prepare default          # here
    # device run, timeout_s 540:
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \\
      && PYTHONPATH=/tmp/site python3 scripts/train_models.py default --backend jax \\
           --data .data/photos --runs .data/runs --minutes 7 \\
      && cp .data/runs/default.ckpt.npz $OUT/

Back here, copy the returned checkpoint to ``runs/`` and ship it with
``python scripts/train_models.py default --ship``; record in
``denoise/models/MODELS.md`` where each part of the training ran.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from train_models import MODELS  # noqa: E402

#: What the device lacks (it has jax, numba, numpy, scipy, Pillow and tqdm): PyTensor, the packages
#: PyTensor and its rewriting libraries require, and zlib-ng (denoise.png). Checked in a venv holding only
#: those six: with these wheels installed by the command above, scripts/gpu_check.py ran on JAX's CPU.
WHEELS = ["pytensor==3.0.7", "cons", "etuples", "logical-unification", "miniKanren", "multipledispatch", "toolz",
          "typing_extensions", "filelock", "setuptools", "zlib-ng"]


def prepare(name: str, photos: Path) -> None:
    exclude = ROOT / ".git" / "info" / "exclude"
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    with exclude.open("a") as f:
        for entry in ("/.whl/", "/.data/"):
            if entry not in lines:
                f.write(entry + "\n")
    whl = ROOT / ".whl"
    whl.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                    "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                    "-d", str(whl), *WHEELS], check=True)
    data = ROOT / ".data"
    if (data / "photos").exists():
        shutil.rmtree(data / "photos")
    shutil.copytree(photos, data / "photos")
    (data / "runs").mkdir(parents=True, exist_ok=True)
    while name:  # the recipe's checkpoint, and those of the recipes it starts from (``init``)
        ckpt = ROOT / "runs" / f"{name}.ckpt.npz"
        if ckpt.exists():
            shutil.copy(ckpt, data / "runs" / ckpt.name)
        name = MODELS[name].get("init")
    total = sum(p.stat().st_size for p in (*whl.iterdir(), *data.rglob("*")) if p.is_file())
    print(f"ready to carry: .whl, .data ({total / 2**20:.1f} MiB; the device tool takes 64 MiB in all)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="put wheels, photos and the checkpoint into .whl/ and .data/")
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("--photos", type=Path, default=Path.home() / ".cache" / "denoise" / "training_data" / "photos")
    args = ap.parse_args(argv)
    prepare(args.name, args.photos)


if __name__ == "__main__":
    main()
