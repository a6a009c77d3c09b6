r"""Batch annotation without a GUI: ``python -m particleseg.annotation {segment,split,gui}``.

::

    # scribbles (a label volume, 1 = particle, 2 = background) -> dataset sample
    python -m particleseg.annotation segment scan.tif scribbles.tif data/mine --split-touching

    # split particle 17 in two along a border drawn through two points
    python -m particleseg.annotation split labels.tif labels_fixed.tif --id 17 \\
        --markers 40,30,30 40,30,90 --border 40,10,60 40,50,60

    # the napari tools
    python -m particleseg.annotation gui scan.tif

Errors name the file and the problem and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from particleseg.annotation.instances import label_instances
from particleseg.annotation.sample import estimate_particle_size_px, save_sample
from particleseg.annotation.scribbles import predict_semantic, train_scribble_classifier
from particleseg.annotation.split import Plane, split_particle
from particleseg.io import (
    SampleMetadata,
    read_metadata,
    read_volume,
    read_volume_spacing,
    sidecar_path,
    write_metadata,
    write_volume,
)


def _point(text: str) -> tuple[float, float, float]:
    """``"z,y,x"`` -> a 3-tuple of floats (argparse ``type``)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected z,y,x (three numbers), got {text!r}")
    return values  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m particleseg.annotation``."""
    parser = argparse.ArgumentParser(
        prog="python -m particleseg.annotation",
        description="Label particles in a scan: scribble classifier, particle splitting, napari.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser(
        "segment",
        help="train on scribbles, predict, label particles, save as a dataset sample",
        description="Train the scribble Random Forest on SCRIBBLES (label volume: 0 unlabelled, "
        "1 = particle, 2.. = other classes), predict every voxel of IMAGE, label the particles "
        "and write IMAGE + labels as a sample of the dataset folder OUT.",
    )
    seg.add_argument("image", type=Path, help="image volume (.tif, .zarr, .npy, slice folder)")
    seg.add_argument("scribbles", type=Path, help="scribble label volume of the image's shape")
    seg.add_argument("out", type=Path, help="dataset folder (dataset.json created or updated)")
    seg.add_argument("--name", help="sample name (default: the image file's stem)")
    seg.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    seg.add_argument("--n-estimators", type=int, default=50, help="trees (default 50)")
    seg.add_argument("--n-jobs", type=int, default=None, help="forest jobs (-1: all cores)")
    seg.add_argument("--block-shape", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"))
    seg.add_argument("--foreground-class", type=int, default=1, help="particle class (1)")
    seg.add_argument("--split-touching", action="store_true", help="distance watershed split")
    seg.add_argument("--h", type=float, default=2.0, help="h-maxima depth of the split (2)")
    seg.add_argument("--min-size", type=int, default=0, help="drop smaller particles (voxels)")
    seg.add_argument("--semantic-out", type=Path, help="also write the class map here")
    meta = seg.add_argument_group(
        "metadata", "default: the image's sidecar IMAGE.meta.json, or the spacing in the file"
    )
    meta.add_argument("--spacing", type=float, nargs=3, metavar=("Z", "Y", "X"))
    meta.add_argument("--unit", default=None, help='unit of spacing and size (default "mm")')
    size = meta.add_mutually_exclusive_group()
    size.add_argument("--particle-size", type=float, help="mean particle diameter (unit)")
    size.add_argument("--particle-size-px", type=float, help="mean particle diameter (voxels)")
    size.add_argument(
        "--estimate-particle-size",
        action="store_true",
        help="write the mean equivalent diameter of the labelled particles (voxels)",
    )
    seg.add_argument("--split", default="train", choices=["train", "id_test", "ood_test"])
    seg.add_argument("--group", default=None, help="group for folds (default: the name)")
    seg.set_defaults(func=run_segment)

    spl = sub.add_parser(
        "split",
        help="split one particle of a label volume along a border",
        description="Split particle ID of LABELS: one marker per part, a border drawn on the "
        "contact (points joined into a polyline) or a plane; write the result to OUT.",
    )
    spl.add_argument("labels", type=Path, help="instance label volume")
    spl.add_argument("out", type=Path, help="output label volume (format from the suffix)")
    spl.add_argument("--id", type=int, required=True, dest="particle_id", help="particle id")
    spl.add_argument(
        "--markers",
        type=_point,
        nargs="+",
        required=True,
        metavar="Z,Y,X",
        help="one point per part (>= 2)",
    )
    border = spl.add_mutually_exclusive_group(required=True)
    border.add_argument(
        "--border",
        type=_point,
        nargs="+",
        metavar="Z,Y,X",
        help="points on the contact, joined in order",
    )
    border.add_argument(
        "--plane",
        type=_point,
        nargs=2,
        metavar=("Z,Y,X", "NZ,NY,NX"),
        help="a border plane: a point and its normal",
    )
    spl.set_defaults(func=run_split)

    gui = sub.add_parser("gui", help="open napari with the annotation tools")
    gui.add_argument("image", type=Path, nargs="?", help="image volume to open")
    gui.add_argument("--labels", type=Path, help="instance labels to correct")
    gui.add_argument("--scribbles", type=Path, help="scribbles saved earlier")
    gui.set_defaults(func=run_gui)
    return parser


def _metadata(args: argparse.Namespace, labels: np.ndarray) -> SampleMetadata:
    """Spacing and particle size from the flags, else the sidecar, else the file."""
    side = None
    if sidecar_path(args.image).exists():
        side = read_metadata(args.image)
    spacing = args.spacing or (side.spacing if side else read_volume_spacing(args.image))
    if spacing is None:
        raise ValueError(
            f"{args.image}: no voxel spacing: give --spacing Z Y X or a sidecar "
            f"{sidecar_path(args.image).name}"
        )
    unit = args.unit or (side.unit if side else "mm")
    size, size_px = args.particle_size, args.particle_size_px
    if args.estimate_particle_size:
        size_px = round(estimate_particle_size_px(labels), 3)
    elif size is None and size_px is None and side is not None:
        size, size_px = side.particle_size, side.particle_size_px
    if size is None and size_px is None:
        raise ValueError(
            f"{args.image}: no particle size: give --particle-size, --particle-size-px, "
            f"--estimate-particle-size or a sidecar {sidecar_path(args.image).name}"
        )
    return SampleMetadata(tuple(spacing), unit, size, size_px)  # type: ignore[arg-type]


def run_segment(args: argparse.Namespace) -> int:
    """``segment``: scribbles -> classifier -> classes -> particles -> dataset sample."""
    t0 = time.perf_counter()
    image = np.asarray(read_volume(args.image))
    scribbles = np.asarray(read_volume(args.scribbles))
    if scribbles.shape != image.shape:
        raise ValueError(
            f"{args.scribbles}: shape {scribbles.shape} differs from the image {args.image} "
            f"{image.shape}"
        )
    try:
        model = train_scribble_classifier(
            image,
            scribbles,
            sigmas=args.sigmas,
            n_estimators=args.n_estimators,
            n_jobs=args.n_jobs,
            block_shape=args.block_shape,
        )
    except ValueError as exc:
        raise ValueError(f"{args.scribbles}: {exc}") from exc
    semantic = predict_semantic(model, image, block_shape=args.block_shape, progress=True)
    if args.semantic_out is not None:
        write_volume(args.semantic_out, semantic)
    labels = label_instances(
        semantic,
        args.foreground_class,
        split_touching=args.split_touching,
        h=args.h,
        min_size=args.min_size,
    )
    meta = _metadata(args, labels)
    name = args.name or args.image.name.split(".")[0]
    entry = save_sample(
        args.out,
        name,
        image,
        labels,
        spacing=meta.spacing,
        particle_size=meta.particle_size,
        particle_size_px=meta.particle_size_px,
        unit=meta.unit,
        split=args.split,
        group=args.group,
    )
    print(
        f"{entry.name}: {int(labels.max())} particles from {model.n_scribbled} scribbled voxels "
        f"({time.perf_counter() - t0:.1f} s) -> {Path(args.out) / 'dataset.json'}"
    )
    return 0


def run_split(args: argparse.Namespace) -> int:
    """``split``: split one particle, write the labels (and copy the sidecar, if any)."""
    labels = np.asarray(read_volume(args.labels))
    border = Plane(*args.plane) if args.plane is not None else args.border
    try:
        out = split_particle(labels, args.particle_id, args.markers, border)
    except ValueError as exc:
        raise ValueError(f"{args.labels}: {exc}") from exc
    write_volume(args.out, out, spacing=read_volume_spacing(args.labels))
    if sidecar_path(args.labels).exists():
        write_metadata(args.out, read_metadata(args.labels))
    new = int(out.max()) - int(labels.max())
    ids = [args.particle_id, *range(int(labels.max()) + 1, int(labels.max()) + 1 + new)]
    print(f"particle {args.particle_id} split into ids {ids} -> {args.out}")
    return 0


def run_gui(args: argparse.Namespace) -> int:
    """``gui``: napari with the annotation tools."""
    from particleseg.annotation.widgets import _napari, launch

    launch(args.image, args.labels, args.scribbles)
    _napari().run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
