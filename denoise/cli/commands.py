"""What each ``denoise`` subcommand does: train, run, eval, models."""

from __future__ import annotations

import json
import sys

import numpy as np

__all__ = ["cmd_train", "cmd_run", "cmd_eval", "cmd_models"]


def cmd_train(args) -> int:
    import denoise

    from ..imagefile import list_images, read_float
    from ..memory import keep_freed_memory
    from ..noise import mixture_spec, parse_mixture
    from ..training.data import holdout_split

    if args.output.exists() and not args.resume:
        raise ValueError(f"{args.output} exists; pass --resume to continue training it, or choose another -o")
    if args.noisy_only:
        return _train_noisy_only(args)
    noises = parse_mixture(args.noise or "gaussian:25")
    files = list_images(args.clean)
    if not files:
        raise ValueError(f"no images in {args.clean}")
    if args.noisy:
        noisy_files = [args.noisy / f.name for f in files]
        missing = [str(p) for p in noisy_files if not p.is_file()]
        if missing:
            raise ValueError(f"--noisy has no counterpart for {len(missing)} clean images, e.g. {missing[0]}")
    if args.val:
        val_files, train_files = list_images(args.val), files
    else:
        train_files, val_files = holdout_split(files)
    clean = [read_float(f) for f in train_files]
    noisy = [read_float(args.noisy / f.name) for f in train_files] if args.noisy else None
    val_clean = [read_float(f) for f in val_files]
    val_noisy = [read_float(args.noisy / f.name) for f in val_files] if (args.noisy and not args.val) else None
    auto = len(noises) > 1 or noises[0].is_range or noises[0].kind == "camera" or bool(args.noisy)
    noise_input = {"yes": True, "no": False, "auto": auto}[args.noise_input]
    model = _initial_model(args, noise_input)
    cfg = denoise.TrainConfig(
        noise=mixture_spec(noises), steps=args.steps, epochs=args.epochs, minutes=args.minutes, epoch_steps=args.epoch_steps,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, seed=args.seed, backend=args.backend,
        lr_decay="cosine", condition=args.condition,
    )
    meta = {"provenance": {"clean": str(args.clean), "noisy": str(args.noisy) if args.noisy else None,
                           "images": len(train_files), "seed": args.seed}}
    if args.stride:
        meta["stride"] = args.stride
    args.output.parent.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()  # this process is ours: keep freed memory for the next step (denoise.memory)
    model = denoise.train(model, clean, cfg, noisy=noisy, val_clean=val_clean, val_noisy=val_noisy,
                          checkpoint=args.output, meta=meta)
    hist = model.meta["history"]
    print(f"trained {model.meta['steps']} steps; validation PSNR {hist[0][2]} -> {hist[-1][2]} dB; wrote {args.output}")
    return 0


def _initial_model(args, noise_input: bool):
    """The model to train: the checkpoint in -o with --resume, else --init's, else a new one."""
    import denoise

    if args.resume and args.output.exists():
        return denoise.load_model(args.output, backend=args.backend)
    if args.init:
        return denoise.load_model(args.init, backend=args.backend)
    arch = denoise.Architecture(
        patch=args.patch, context=args.context, channels=args.channels, hidden=args.hidden, noise_input=noise_input,
        surround=args.surround, neighbours=args.neighbours, search=args.search, colour=args.colour,
    )
    return denoise.Autoencoder(arch, seed=args.seed, backend=args.backend)


def _train_noisy_only(args) -> int:
    """``train --noisy-only``: self-supervised on the noisy images, validated on held-back strips."""
    import denoise

    from ..adapt import train_noisy
    from ..imagefile import list_images, read_image
    from ..memory import keep_freed_memory
    from ..training.selfsupervised import SelfNoise

    if args.noisy or args.val:
        raise ValueError("--noisy and --val go with --clean; --noisy-only validates on a strip of each of its images")
    noise = SelfNoise.parse(args.noise)
    files = list_images(args.noisy_only)
    if not files:
        raise ValueError(f"no images in {args.noisy_only}")
    images = [read_image(f)[0] for f in files]
    model = _initial_model(args, noise_input=True)
    cfg = denoise.TrainConfig(
        steps=args.steps, epochs=args.epochs, minutes=args.minutes, epoch_steps=args.epoch_steps,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, seed=args.seed, backend=args.backend,
    )
    meta = {"provenance": {"noisy_only": str(args.noisy_only), "images": len(files), "seed": args.seed,
                           "init": args.init}}
    if args.stride:
        meta["stride"] = args.stride
    args.output.parent.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()
    model = train_noisy(model, images, cfg, noise=noise, checkpoint=args.output, meta=meta)
    hist = model.meta["history"]
    print(f"trained {model.meta['steps']} steps self-supervised; validation PSNR against the noisy targets "
          f"{hist[0][2]} -> {hist[-1][2]} dB; wrote {args.output}")
    return 0


def cmd_run(args) -> int:
    from ..folders import denoise_folder
    from ..folders.report import summary
    from ..folders.run import ReportError

    report_error = None
    try:
        entries = denoise_folder(
            args.inputs, args.output, model=args.model, sigma=args.sigma, stride=args.stride, ensemble=args.ensemble,
            strength=args.strength, camera=args.camera,
            recursive=args.recursive, fmt=args.format, jpeg_quality=args.jpeg_quality, tile_megapixels=args.tile,
            overwrite=args.overwrite, workers=args.workers, scheduler=args.scheduler,
            progress=False if args.quiet else None, report=args.report,
            storage_options=args.storage_options, shared_storage=args.shared_storage, adapt=args.adapt,
        )
    except ReportError as exc:  # the work is done: say what failed, then why the report is missing
        entries, report_error = exc.entries, exc
    failed = [e for e in entries if e["status"] == "failed"]
    for e in failed:
        print(f"failed: {e['file']}: {e['reason']}", file=sys.stderr)
    counts = summary(entries)
    if not args.quiet:
        if args.adapt:
            _print_adaptation(args)
        print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed", file=sys.stderr)
    if report_error is not None:
        print(f"denoise run: error: {report_error}", file=sys.stderr)
        return 2
    if args.preview:
        from ..preview import contact_sheet

        pairs = [(e["file"], e["output"]) for e in entries if e["status"] in ("done", "skipped")]
        rows = contact_sheet(pairs, args.preview, storage_options=args.storage_options)
        if not args.quiet:
            print(f"wrote a before/after sheet of {rows} file(s) to {args.preview}", file=sys.stderr)
    return 1 if failed else 0


def _print_adaptation(args) -> None:
    """The adapted model's record, from the file the run wrote into the output folder."""
    from .. import remote
    from ..folders.adaptation import ADAPTED, describe
    from ..modelfile import load_model

    path = remote.join(remote.canonical(args.output, args.storage_options), ADAPTED)
    try:
        meta = load_model(str(path), data=remote.read_bytes(path, args.storage_options)).meta
    except (OSError, ValueError):
        return  # no files to adapt to: nothing was adapted
    print(describe(meta["adaptation"], path), file=sys.stderr)


def cmd_eval(args) -> int:
    from ..imagefile import list_images, read_float
    from ..metrics import psnr, ssim
    from ..modelfile import load_model
    from ..noise import parse
    from ..pipeline import denoise_image

    model = load_model(args.model)
    noise = parse(args.noise)
    files = list_images(args.clean)
    if not files:
        raise ValueError(f"no images in {args.clean}")
    rows = []
    print(f"{'image':32s} {'noisy PSNR':>10s} {'PSNR':>8s} {'noisy SSIM':>10s} {'SSIM':>7s}")
    for i, f in enumerate(files):
        clean = read_float(f)
        rng = np.random.default_rng([args.seed, i])
        noisy = noise.add(clean, rng)
        out = denoise_image(model, noisy, args.sigma, ensemble=args.ensemble, strength=args.strength, camera=args.camera)
        row = {
            "image": f.name,
            "noisy_psnr": psnr(clean, noisy), "psnr": psnr(clean, out),
            "noisy_ssim": ssim(clean, np.clip(noisy, 0, 1)), "ssim": ssim(clean, out),
        }
        rows.append(row)
        print(f"{f.name:32s} {row['noisy_psnr']:10.2f} {row['psnr']:8.2f} {row['noisy_ssim']:10.4f} {row['ssim']:7.4f}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("noisy_psnr", "psnr", "noisy_ssim", "ssim")}
    print(f"{'mean':32s} {mean['noisy_psnr']:10.2f} {mean['psnr']:8.2f} {mean['noisy_ssim']:10.4f} {mean['ssim']:7.4f}")
    if args.json:
        from ..storage import atomic_write

        atomic_write(args.json, json.dumps({"model": args.model, "noise": noise.spec, "seed": args.seed, "ensemble": args.ensemble,
                                         "strength": args.strength, "camera": args.camera,
                                         "images": rows, "mean": mean}, indent=1).encode())
    return 0


def cmd_models(args) -> int:
    from ..modelfile import list_models, load_model, model_card

    for name in list_models():
        m = load_model(name)
        arch = m.arch
        extra = "".join([f", surround {list(arch.surround)}" if arch.surround else "",
                         f", {arch.neighbours} neighbours within {arch.search} px" if arch.neighbours else ""])
        print(f"{name}: patch {arch.patch}+{arch.context} context{extra}, hidden {list(arch.hidden)}, "
              f"noise {m.meta.get('noise')}, stride {m.stride}, "
              f"{arch.flops_per_pixel(m.stride) / 1e3:.0f} kFLOP/pixel")
    print()
    print(model_card())
    return 0
