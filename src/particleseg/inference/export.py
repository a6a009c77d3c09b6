"""Export a training checkpoint as a small model file: the network's weights and its metadata.

A checkpoint written by ``train.py`` also holds the optimizer's state and the loops' (45 MB for
cpu_small, whose weights are 22 MB in float32). The exported file keeps what
:func:`particleseg.inference.model.load_checkpoint` needs (weights, network config, intensity
statistics, target particle size, border thickness, patch size), stored in float16 by default
(half the size; the weights are cast back to float32 on load), plus where it came from and,
optionally, the post-processing thresholds tuned for it (predict uses them by default):

    python -m particleseg.inference.export CHECKPOINT OUT.ckpt [--dtype float16|bfloat16|float32]
        [--postprocess tuned.json]   # a file from python -m particleseg.inference.tune
        [--per-scan-from DATASET]    # a global z-score model normalized per scan instead
        [--reference DATASET]        # store its train scans' input histograms (see below)
        [--size-band band.json]      # a file from python -m particleseg.inference.size_band
        [--int8 DATASET]             # also OUT.int8.xml, calibrated on the dataset's val scans

``--per-scan-from`` gives a model trained with the global z-score the per-scan normalization
(:func:`particleseg.transforms.normalization.zscore_as_percentile`, measured on the dataset's
train split: the scans it was trained on), so gain, offset and bit depth stop mattering.

``--reference`` stores the network-input histograms of the dataset's train scans
(:mod:`particleseg.transforms.input_reference`): predict then warns when a scan's histogram is
far from all of them. An exported model file may be given as ``CHECKPOINT`` to add a reference
(or change the normalization) without retraining; its provenance is kept.

``--int8`` quantizes the exported network for OpenVINO (:mod:`particleseg.inference.quantize`;
needs NNCF) into a second file beside it, for ``inference.precision=int8``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from particleseg.inference.model import load_checkpoint
from particleseg.io import load_dataset, read_volume
from particleseg.io.atomic import atomic_path
from particleseg.models.metadata import CHECKPOINT_KEY, model_metadata, read_model_metadata
from particleseg.transforms.input_reference import (
    build_reference,
    normalized_sample,
)
from particleseg.transforms.normalization import zscore_as_percentile

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def export_model(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    dtype: str = "float16",
    postprocess: dict | None = None,
    normalization: dict | None = None,
    input_reference: dict | None = None,
    size_band: Sequence[float] | None = None,
) -> Path:
    """Write the network of ``checkpoint`` with its metadata to ``out`` (atomically).

    Args:
        checkpoint: a checkpoint written by ``train.py``.
        out: the model file to write.
        dtype: storage dtype of floating-point weights: float16, bfloat16 or float32.
        postprocess: thresholds tuned for this model (keys of predict's ``postprocess``),
            stored in the metadata; predict takes them where its own values are null.
        normalization: a normalization scheme config to store instead of the checkpoint's.
        input_reference: the normalized reference scans' histograms
            (:func:`particleseg.transforms.input_reference.build_reference`).
        size_band: (low, high) network particle diameters the model was validated on
            (:func:`particleseg.inference.size_band.measure_size_band`); predict then resizes a
            scan only into it.

    Returns:
        ``Path(out)``.

    Raises:
        ValueError: not a train.py checkpoint (see :func:`load_checkpoint`), or a bad dtype.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    checkpoint = Path(checkpoint)
    model = load_checkpoint(checkpoint)  # validates the file and its metadata
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    meta = read_model_metadata(ckpt, str(checkpoint))
    source = {
        "file": checkpoint.name,
        "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "storage_dtype": dtype,
    }
    provenance = dict(meta.provenance)
    # an exported model file, re-exported: keep its provenance
    provenance["reexported_from" if "exported_from" in provenance else "exported_from"] = source
    meta = model_metadata(
        net_config=meta.net_config,
        normalization=normalization if normalization is not None else meta.normalization,
        target_particle_size=meta.target_particle_size,
        border_thickness=meta.border_thickness,
        patch_size=meta.patch_size,
        postprocess=dict(postprocess) if postprocess else meta.postprocess,
        input_reference=input_reference if input_reference is not None else meta.input_reference,
        size_band=size_band if size_band is not None else meta.size_band,
        **provenance,
    )
    state = {
        f"net.{k}": (v.to(DTYPES[dtype]) if v.is_floating_point() else v)
        for k, v in model.net.state_dict().items()
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save({"state_dict": state, CHECKPOINT_KEY: meta}, tmp)
    return out


def dataset_reference(dataset: str | os.PathLike, normalization: dict) -> dict:
    """The input reference of a dataset's train scans under a normalization scheme.

    Raises:
        ValueError: the dataset cannot be read or has no train scans.
    """
    entries = list(load_dataset(dataset).split("train"))
    if not entries:
        raise ValueError(f"{dataset}: no train scans to build the input reference from")
    samples = [normalized_sample(read_volume(e.image), normalization) for e in entries]
    return build_reference(samples, [e.name for e in entries])


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m particleseg.inference.export CHECKPOINT OUT``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    parser.add_argument(
        "--postprocess", type=Path, help="JSON with tuned thresholds (its 'params', or flat)"
    )
    parser.add_argument(
        "--per-scan-from",
        type=Path,
        help="dataset folder: normalize per scan, matched to the global z-score on its train split",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="dataset folder: store its train scans' network-input histograms for predict's "
        "warning on unfamiliar scans",
    )
    parser.add_argument(
        "--size-band",
        type=Path,
        help="JSON from python -m particleseg.inference.size_band: its 'band' is stored",
    )
    parser.add_argument(
        "--int8",
        type=Path,
        metavar="DATASET",
        help="dataset folder: also write OUT.int8.xml, calibrated on its val scans",
    )
    args = parser.parse_args(argv)
    try:
        normalization = None
        if args.per_scan_from is not None:
            dataset = load_dataset(args.per_scan_from)
            scans = (read_volume(e.image) for e in dataset.split("train"))
            normalization = zscore_as_percentile(
                load_checkpoint(args.checkpoint).normalization, scans
            )
        postprocess = None
        if args.postprocess is not None:
            try:
                tuned = json.loads(args.postprocess.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise ValueError(f"{args.postprocess}: cannot read the thresholds ({err})") from err
            postprocess = tuned.get("params", tuned)
        band = None
        if args.size_band is not None:
            try:
                band = json.loads(args.size_band.read_text())["band"]
            except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{args.size_band}: cannot read the size band ({err})") from err
        reference = None
        if args.reference is not None:
            config = normalization or load_checkpoint(args.checkpoint).normalization
            reference = dataset_reference(args.reference, config)
        path = export_model(
            args.checkpoint, args.out, args.dtype, postprocess, normalization, reference, band
        )
        int8 = None
        if args.int8 is not None:
            from particleseg.inference.quantize import calibration_crops, quantize_int8

            int8 = quantize_int8(path, calibration_crops(load_checkpoint(path), args.int8))
    except ValueError as err:
        parser.exit(2, f"export: {err}\n")
    print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    if int8 is not None:
        print(f"{int8} (+ .bin, {int8.with_suffix('.bin').stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
