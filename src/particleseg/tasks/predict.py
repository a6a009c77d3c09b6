"""The predict task: segment a scan, or every sample of a dataset, with a trained model."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def predict(cfg: DictConfig, callbacks: list | None = None) -> list[dict]:
    """Segment a scan, or every sample of a dataset folder, with a trained model.

    Writes per scan ``OUTPUT/NAME/`` (see :mod:`particleseg.inference.pipeline`) and prints a
    one-line summary of each.

    Args:
        cfg: the composed predict config (``conf/predict.yaml``).
        callbacks: Lightning callbacks added to the network stage's trainer (the napari
            widget's progress bar and cancel button).

    Returns:
        The summaries (on global rank 0; empty on the other ranks).
    """
    # The door first: a missing input or a bad model file must fail in a second, not after
    # torch and MONAI load (the pipeline's imports take 20 s or more on a busy machine).
    from particleseg.inference.inputs import input_kind, list_scans

    source = cfg.get("input")
    if source in (None, ""):
        from particleseg.synth.sample import bundled_sample

        source = str(bundled_sample())
        print(f"no input=... given: segmenting the bundled sample scan {source}")
    sizes = {
        "particle_size": cfg.particle_size,
        "particle_size_px": cfg.particle_size_px,
        "spacing": OmegaConf.to_container(cfg.spacing) if cfg.spacing is not None else None,
    }
    splits = list(cfg.splits) if cfg.get("splits") else None
    scans = list_scans(source, splits=splits, **sizes)
    out_root = Path(cfg.output)
    if out_root.is_file():  # before the model loads (run_state checks it again, per scan)
        raise ValueError(f"{out_root}: the output must be a folder, and this is a file")
    from particleseg.inference.checks import check_particle_fits

    for scan in scans:  # and the size, where it is known already
        check_particle_fits(scan)
    from particleseg.inference.model import load_checkpoint, resolve_model_path

    model = load_checkpoint(resolve_model_path(cfg.checkpoint))
    from hydra.utils import instantiate

    from particleseg.inference.pipeline import predict_scan
    from particleseg.inference.size_estimate import refine_particle_size

    inference = OmegaConf.to_container(cfg.inference, resolve=True)
    postprocess = OmegaConf.to_container(cfg.postprocess, resolve=True)
    trainer = instantiate(cfg.trainer, callbacks=list(callbacks or []))
    single = input_kind(Path(source)) in ("volume", "slices")  # else one folder per scan
    if cfg.get("dry_run"):
        from particleseg.inference.cost import dry_run_rows
        from particleseg.inference.cpu_stages import resolve_postprocess

        halo = resolve_postprocess(postprocess, model.postprocess)["halo"]
        devices = trainer.num_devices * trainer.num_nodes
        rows = dry_run_rows(scans, model, inference, devices, halo, cfg.dask.get("num_workers"))
        print(format_dry_run(rows, out_root, single))
        return []
    scans = [refine_particle_size(s, model, inference, postprocess) for s in scans]
    resolved = OmegaConf.to_container(cfg, resolve=True)
    summaries = []
    for scan in scans:
        out_dir = out_root if single else out_root / scan.name
        summary = predict_scan(
            scan,
            out_dir,
            model,
            trainer,
            inference=inference,
            postprocess=postprocess,
            outputs=OmegaConf.to_container(cfg.outputs, resolve=True),
            dask=OmegaConf.to_container(cfg.dask, resolve=True),
            overwrite=bool(cfg.overwrite),
            force=bool(cfg.force),
            max_hours=float(cfg.max_hours),
            config=resolved,
        )
        if summary is not None:
            summaries.append(summary)
            print(format_predict_summary(summary, out_dir))
    return summaries


def format_dry_run(rows: list[dict], out_root: Path, single: bool) -> str:
    """What predict would do: per scan its size, resize, grid, windows, time and output folder."""
    lines = [f"dry run: {len(rows)} scan(s), nothing written"]
    total = 0.0
    for r in rows:
        out = out_root if single else out_root / r["name"]
        if r.get("hours") is None:
            lines.append(f"  {r['name']}: {r['note']} -> {out}")
            continue
        total += r["hours"]
        lines.append(
            f"  {r['name']}: {'x'.join(map(str, r['shape']))} voxels, particles "
            f"{r['size_px']:.3g} voxels ({r['source']}), zoom {r['zoom']:.3g}, network grid "
            f"{'x'.join(map(str, r['network_shape']))}, {r['windows']} windows, about "
            f"{r['hours'] * 60:.1f} min for the network, peak memory about "
            f"{r['peak_memory_bytes'] / 2**30:.1f} GiB -> {out}"
        )
    lines.append(f"  total about {total * 60:.1f} min for the network stages")
    return "\n".join(lines)


def format_predict_summary(summary: dict, out_dir: Path) -> str:
    """The lines predict prints per scan: particles, sizes, time, where the outputs are."""
    size = summary["particle_size"]["used_px_zyx"]
    lines = [
        f"{summary['name']}: {summary['particles']} particles (mean diameter used "
        f"{size[0]:.1f} voxels, from {summary['particle_size']['source']}), "
        f"{summary['timings_s']['this_run_total']:.0f} s"
    ]
    dist = summary.get("size_distribution") or {}
    if dist.get("count"):
        unit = dist["unit"]
        lines.append(
            "  equivalent diameter D10 / D50 / D90: "
            + " / ".join(f"{dist[f'D{p}_number']:.4g}" for p in (10, 50, 90))
            + f" {unit} by number, "
            + " / ".join(f"{dist[f'D{p}_volume']:.4g}" for p in (10, 50, 90))
            + f" {unit} by volume"
        )
    for warning in summary.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    files = sorted({*((summary.get("disk_bytes") or {}).get("outputs") or {}), "summary.json"})
    lines.append(f"  -> {out_dir}: {', '.join(files)}")
    return "\n".join(lines)
