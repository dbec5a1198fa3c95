"""What the benchmarks in ``scripts/`` share: timers, the GEMM peak, test
photos, child processes, sections on the command line, and
``docs/performance.md``, where each section writes what it printed.

Not a script: the benchmarks import it as a sibling (``python
scripts/bench_speed.py`` puts ``scripts/`` on ``sys.path``), and import
``denoise`` as installed (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from denoise.folders.settings import Settings
from denoise.folders.tasks import denoise_bytes
from denoise.imagefile import read_image
from denoise.memory import MALLOC_SETTINGS
from denoise.modelfile import model_path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
PHOTO = SAMPLES / "honey_bee.jpg"
PERFORMANCE = ROOT / "docs" / "performance.md"

#: The environment a worker of our LocalCluster starts with (``denoise.folders.connect``): one
#: BLAS/OpenMP thread, as Dask's nanny sets, and :data:`denoise.memory.MALLOC_SETTINGS`.
WORKER_ENV = {**dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1"),
              **{k: str(v) for k, v in MALLOC_SETTINGS.items()}}


# ---- timing


def once(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_time(fn, repeats=5) -> float:
    """Median seconds of ``repeats`` calls of ``fn``, after one untimed call."""
    fn()
    return float(np.median([once(fn) for _ in range(repeats)]))


def alternating(fns: dict, rounds: int) -> dict:
    """Seconds of each of ``fns`` (name -> function), one call of each in turn per
    round after one untimed call of each, so that all see the same machine load:
    ``{name: array of per-round seconds}``. Compare two of them by the median of
    their per-round ratios, the figure a drifting machine spoils least."""
    for fn in fns.values():
        fn()
    times = np.array([[once(fn) for fn in fns.values()] for _ in range(rounds)])
    return {name: times[:, i] for i, name in enumerate(fns)}


def gemm_peak(n=4096) -> float:
    """numpy's float32 GEMM rate on ``n`` x ``n`` matrices, GFLOP/s (median of 5)."""
    a, b = _gemm_operands(n)
    return 2 * n**3 / median_time(lambda: a @ b) / 1e9


def _gemm_operands(n):
    return (np.random.default_rng(0).random((n, n), dtype=np.float32),
            np.random.default_rng(1).random((n, n), dtype=np.float32))


def interleaved_ratios(fns, rounds=7, n=4096, seconds=0.5) -> list[dict]:
    """Rates of each ``(fn, flops)`` in ``fns`` against numpy's GEMM, timed in turn
    within each round, then the GEMM, so that all see the same machine load;
    medians over rounds of GFLOP/s and of per-round ratios.

    Each ``fn`` is timed two ways each round: as one call after a pause, and
    sustained, called back to back for ``seconds``, as the pipeline calls
    the forward pass and the training loop its step. A lone call pays for
    waking BLAS threads and refilling caches, which a run of calls pays
    once. The pauses let each BLAS library's threads stop spinning (numpy's
    and scipy's OpenBLAS, which Numba calls, are separate pools). A ``fn``
    with a ``finish`` attribute leaves work in flight (see :func:`pipelined`):
    ``fn.finish()`` waits for it inside each timing.

    Returns per ``fn`` ``dict(gemm=, sustained=, sustained_ratio=, sustained_spread=, single=,
    single_ratio=, rounds=)``: ``sustained_spread`` the (lowest, highest) per-round sustained
    ratio (on a shared machine the rounds of one row can differ severalfold, which the median
    alone hides), ``rounds`` the sustained GFLOP/s of each round, to compare two ``fn`` round by round."""
    a, b = _gemm_operands(n)
    for fn, _ in fns:
        fn(), getattr(fn, "finish", lambda: None)()
    a @ b
    rows = []  # per round: the GEMM's rate, then each fn's sustained and single rates
    for _ in range(rounds):
        row = []
        for fn, flops in fns:
            finish = getattr(fn, "finish", lambda: None)
            time.sleep(0.5)
            t = time.perf_counter()
            fn()
            finish()
            single = flops / (time.perf_counter() - t) / 1e9
            time.sleep(0.5)
            calls, t = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - t < seconds:
                fn()
                calls += 1
            finish()
            row += [calls * flops / (time.perf_counter() - t) / 1e9, single]
        time.sleep(0.5)
        t = time.perf_counter()
        a @ b
        rows.append([2 * n**3 / (time.perf_counter() - t) / 1e9, *row])
    rows = np.array(rows)
    gemm = rows[:, 0]
    out = []
    for k in range(len(fns)):
        sustained, single = rows[:, 1 + 2 * k], rows[:, 2 + 2 * k]
        out.append(dict(gemm=float(np.median(gemm)), sustained=float(np.median(sustained)),
                        sustained_ratio=float(np.median(sustained / gemm)),
                        sustained_spread=(float(np.min(sustained / gemm)), float(np.max(sustained / gemm))),
                        single=float(np.median(single)), single_ratio=float(np.median(single / gemm)), rounds=sustained))
    return out


def ratio_line(label: str, r: dict) -> str:
    """One row of :func:`interleaved_ratios`' results."""
    low, high = r["sustained_spread"]
    return (f"  {label:24s} {r['sustained']:7.1f} GFLOP/s  (GEMM {r['gemm']:6.1f})  {r['sustained_ratio']:6.1%} of GEMM"
            f" (rounds {low:.0%}-{high:.0%});  one call after a pause {r['single']:6.1f} GFLOP/s, {r['single_ratio']:6.1%}")


def pipelined(dispatch):
    """``dispatch()`` (draw a batch, start its step) called as train() runs its loop, with one step in
    flight: each call then reads the previous step's loss (JAX returns before its step is done, so the
    next batch is drawn meanwhile). ``.finish()`` reads the last one's."""
    pending = []

    def call():
        pending.append(dispatch())
        if len(pending) > 1:
            float(pending.pop(0))

    def finish():
        while pending:
            float(pending.pop(0))

    call.finish = finish
    return call


# ---- test images


def tile_to(image: np.ndarray, megapixels: float) -> np.ndarray:
    """``image`` repeated side by side and cropped to about ``megapixels``, in its own aspect ratio."""
    h, w = image.shape[:2]
    side_h = max(1, int(np.sqrt(megapixels * 1e6 * h / w)))
    side_w = max(1, int(megapixels * 1e6 / side_h))
    reps = (side_h // h + 1, side_w // w + 1) + (1,) * (image.ndim - 2)
    return np.tile(image, reps)[:side_h, :side_w]


def noisy_photo(megapixels: float, *, gray: bool = False, noise: float = 25, seed: int = 0) -> np.ndarray:
    """A uint8 photo of about ``megapixels``: a sample photo tiled to size, with
    Gaussian noise of ``noise`` 8-bit levels."""
    a, _ = read_image(PHOTO)
    if gray:
        a = np.asarray(Image.fromarray(a).convert("L"))
    big = tile_to(a, megapixels)
    n = np.random.default_rng(seed).normal(0, noise, big.shape).astype(np.float32)
    return np.clip(big + n, 0, 255).astype(np.uint8)


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write ``array`` as a PNG quickly (zlib level 1): inputs for a benchmark."""
    Image.fromarray(array).save(path, compress_level=1)
    return path


def photo_folder(folder: Path, files: int, megapixels: float, seed: int = 0) -> Path:
    """``folder`` filled with ``files`` test photos of ``megapixels``, gray and RGB in turn (gray first)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        save_png(noisy_photo(megapixels, gray=i % 2 == 0, seed=seed + i), folder / f"p{i}.png")
    return folder


def warm_up(sha: str, model_data: bytes) -> None:
    """Load and compile the model in this process as a folder run's task does, and compile what a
    blind gray and a blind colour file use (the noise estimate's kernel and the PNG writer included),
    so that no timing pays for it. On Dask: ``client.run(warm_up, sha, data)``."""
    for shape in ((64, 64), (64, 64, 3)):
        tiny = pillow_png(np.zeros(shape, np.uint8))
        ok, value = denoise_bytes(sha, model_data, "warm-up.png", tiny, ".png", Settings())
        if not ok:
            raise RuntimeError(value[0])


def model_file(name: str) -> tuple[str, bytes]:
    """``(sha256, bytes)`` of a model file, as a folder run sends it to its workers."""
    data = model_path(name).read_bytes()
    return hashlib.sha256(data).hexdigest(), data


def pillow_png(array: np.ndarray, **options) -> bytes:
    """PNG file bytes from Pillow's encoder (``options`` as for ``Image.save``)."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **options)
    return buf.getvalue()


# ---- child processes


def in_child(script: str, name: str, *, env: dict | None = None, **kwargs):
    """Run function ``name(**kwargs)`` of ``script`` in a fresh Python process, with ``env``
    added to this one's environment; print what it printed and return what it returned
    (JSON), or None if it failed (its last error line printed)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        r = subprocess.run([sys.executable, "-W", "ignore", script, "--child", json.dumps([name, kwargs, str(result)])],
                           capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
        if r.stdout.strip():
            print(r.stdout.rstrip(), flush=True)
        if r.returncode != 0 or not result.exists():
            print(f"  {name} failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:200]}", flush=True)
            return None
        return json.loads(result.read_text())


def _child(spec: str, namespace: dict) -> None:
    name, kwargs, result = json.loads(spec)
    Path(result).write_text(json.dumps(namespace[name](**kwargs)))


# ---- sections, and docs/performance.md


def main(doc: str, sections: dict, argv=None, *, add_arguments=None, record_default=True, namespace=None) -> None:
    """A benchmark's command line: ``--section NAME`` (repeatable; default: all of
    ``sections``, name -> function of the parsed arguments), ``--quick``, ``--no-record``
    (or ``--record`` where ``record_default`` is False); ``add_arguments(parser)`` adds the
    script's own. Each section runs in turn; what it prints (or the Markdown it returns)
    is written to its block of ``docs/performance.md``. ``namespace``: the script's
    globals, where ``--child`` (see :func:`in_child`) finds its functions."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--section", action="append", choices=sorted(sections), metavar="NAME",
                    help=f"run only this section (repeatable; default: all of {', '.join(sections)})")
    ap.add_argument("--quick", action="store_true", help="small sizes and few rounds, for a quick look")
    if record_default:
        ap.add_argument("--no-record", dest="record", action="store_false",
                        help=f"print only; by default each section's output goes to {PERFORMANCE.relative_to(ROOT)}")
    else:
        ap.add_argument("--record", action="store_true", help=f"also write the output to {PERFORMANCE.relative_to(ROOT)}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    if add_arguments:
        add_arguments(ap)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, namespace)
    argv = sys.argv[1:] if argv is None else list(argv)
    script = Path(sys.argv[0]).name
    others = _without_sections(argv)
    for name in args.section or sections:
        text = io.StringIO()
        with contextlib.redirect_stdout(_Tee(sys.stdout, text)):
            markdown = sections[name](args)
        if args.record:
            command = " ".join(["python", f"scripts/{script}", *others, "--section", name])
            record(script, name, command, markdown if markdown is not None else f"```\n{text.getvalue().rstrip()}\n```")


def _without_sections(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--section":
            skip = True
        elif not a.startswith("--section=") and a not in ("--record", "--no-record"):
            out.append(a)
    return out


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def machine() -> str:
    """This machine in a few words: CPU model, cores, Python, numpy."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, numpy {np.__version__}"


def commit() -> str:
    """``git rev-parse --short HEAD``, and whether the working tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} with uncommitted changes" if dirty else head


def record(script: str, section: str, command: str, markdown: str, path: Path = PERFORMANCE) -> None:
    """Put ``markdown`` into ``path`` as the block of ``script``'s ``section``, with the
    command that made it, the date, commit and machine, replacing that block's previous
    contents (or appended at the end, the first time)."""
    begin, end = f"<!-- begin {script} --section {section} -->", f"<!-- end {script} --section {section} -->"
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"{begin}\n`{command}`: {when}, commit {commit()}, {machine()}.\n\n{markdown.strip()}\n{end}")
    text = path.read_text() if path.exists() else "# Performance\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + f"\n\n### `{script} --section {section}`\n\n{block}\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
