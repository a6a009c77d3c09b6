"""int8 post-training quantization of a model file's network for OpenVINO (NNCF).

The int8 model is a second file beside the model: ``MODEL.int8.xml`` and ``MODEL.int8.bin``, an
OpenVINO IR whose runtime info names the SHA-256 of the model file it was quantized from, so a
stale or foreign int8 file is refused instead of silently run (:func:`load_int8_ir`). predict
uses it with ``inference.precision=int8`` (:mod:`particleseg.inference.engines`).

Calibration (:func:`calibration_crops`): ``n_crops`` windows of the model's patch size, drawn
with a fixed seed from the scans of one split of a labelled dataset (the validation scans,
never a test split), each normalized per scan as predict normalizes it. The scans are not
resized: the crops only set the activations' ranges.

    python -m particleseg.inference.quantize MODEL.ckpt DATASET [--split val] [--crops 64]

NNCF (``pip install nncf``) is needed to make the file, not to run it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from particleseg.inference.model import load_checkpoint
from particleseg.inference.run_state import file_sha256
from particleseg.io import load_dataset, read_volume
from particleseg.transforms.normalization import normalization_for_scan

#: Where the int8 file's runtime info keeps the source model's SHA-256.
RT_KEY = ["particleseg", "model_sha256"]
#: Calibration windows (4 per val scan of data/synth_wide).
N_CROPS = 64


def int8_path(model_path: str | os.PathLike) -> Path:
    """The int8 IR (``.xml``; its weights are the ``.bin`` beside it) of a model file."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.int8.xml")


def calibration_crops(
    model, dataset: str | os.PathLike, split: str = "val", n_crops: int = N_CROPS, seed: int = 0
) -> list[np.ndarray]:
    """``n_crops`` normalized (1, 1, *patch) float32 windows, spread evenly over the split's scans.

    Raises:
        ValueError: the split has no scans, or a scan is smaller than the patch.
    """
    entries = list(load_dataset(dataset).split(split))
    if not entries:
        raise ValueError(f"{dataset}: split {split!r} has no scans to calibrate on")
    rng = np.random.default_rng(seed)
    patch = tuple(model.patch_size)
    crops: list[np.ndarray] = []
    for i, entry in enumerate(entries):
        n = n_crops // len(entries) + (i < n_crops % len(entries))
        if n == 0:
            continue
        image = np.asarray(read_volume(entry.image))
        if image.ndim != 3 or any(s < p for s, p in zip(image.shape, patch, strict=True)):
            raise ValueError(f"{entry.image}: shape {image.shape} is not a 3D scan >= {patch}")
        x = normalization_for_scan(image, model.normalization)(image).astype(np.float32)
        for _ in range(n):
            o = [int(rng.integers(0, s - p + 1)) for s, p in zip(x.shape, patch, strict=True)]
            window = x[o[0] : o[0] + patch[0], o[1] : o[1] + patch[1], o[2] : o[2] + patch[2]]
            crops.append(np.ascontiguousarray(window)[None, None])
    return crops


def quantize_int8(
    model_path: str | os.PathLike,
    crops: list[np.ndarray],
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Quantize the model file's network to int8 on ``crops``; write the IR; return its .xml.

    Weights and activations of the convolutions become int8 (NNCF's mixed preset: symmetric
    weights, asymmetric activations, fast bias correction), except the first convolution (it
    sees the grey values, whose faint contrasts matter most) and the last (the logits), which
    stay float with everything else. For the shipped model, F1_instance on data/synth_wide's
    val scans fell by 0.014 against fp32 with every convolution in int8 and 32 crops, by 0.010
    with these settings, and by 0.013 with NNCF's full bias correction on top
    (``benchmarks/bench_precision.py``).

    Raises:
        ValueError: no crops, or NNCF is not installed.
    """
    if not crops:
        raise ValueError("int8 quantization needs at least one calibration crop")
    try:
        import nncf
    except ImportError as err:
        raise ValueError("int8 quantization needs NNCF: pip install nncf") from err
    import openvino as ov

    from particleseg.config import user_cache_dir
    from particleseg.inference.engines import openvino_ir

    model_path = Path(model_path)
    model = load_checkpoint(model_path)
    cache = Path(cache_dir) if cache_dir is not None else user_cache_dir()
    xml = openvino_ir(model.net, model_path, model.patch_size, cache)
    fp32 = ov.Core().read_model(str(xml))
    convs = [
        op.get_friendly_name()
        for op in fp32.get_ordered_ops()
        if "Convolution" in op.get_type_name()
    ]
    quantized = nncf.quantize(
        fp32,
        nncf.Dataset(crops),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(crops),
        ignored_scope=nncf.IgnoredScope(names=[convs[0], convs[-1]]),
    )
    quantized.set_rt_info(file_sha256(model_path), RT_KEY)
    quantized.set_rt_info(len(crops), ["particleseg", "calibration_crops"])
    out = Path(out) if out is not None else int8_path(model_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f"{out.stem}.{os.getpid()}.part.xml")
    ov.save_model(quantized, str(part), compress_to_fp16=False)
    out.unlink(missing_ok=True)  # the .xml comes last: an old one never pairs with a new .bin
    os.replace(part.with_suffix(".bin"), out.with_suffix(".bin"))
    os.replace(part, out)
    return out


def load_int8_ir(model_path: str | os.PathLike, patch, xml: str | os.PathLike | None = None):
    """The int8 ``openvino.Model`` of a model file, reshaped to ``patch`` windows.

    Raises:
        ValueError: the int8 file is missing, unreadable, or was quantized from another model
            file (its recorded SHA-256 differs from the model file's).
    """
    import openvino as ov

    model_path = Path(model_path)
    xml = Path(xml) if xml is not None else int8_path(model_path)
    if not xml.is_file() or not xml.with_suffix(".bin").is_file():
        raise ValueError(
            f"{xml}: no int8 model for {model_path.name}; make it with python -m "
            f"particleseg.inference.quantize {model_path} DATASET, or use "
            "inference.precision=bf16|fp32|auto"
        )
    try:
        net = ov.Core().read_model(str(xml))
    except RuntimeError as err:
        raise ValueError(f"{xml}: cannot read the int8 model ({str(err).splitlines()[0]})") from err
    recorded = net.get_rt_info(RT_KEY).astype(str) if net.has_rt_info(RT_KEY) else "none"
    if recorded != file_sha256(model_path):
        raise ValueError(
            f"{xml}: quantized from another model file (SHA-256 {recorded[:12]}, "
            f"{model_path.name} has {file_sha256(model_path)[:12]}); quantize it again"
        )
    net.reshape([1, 1, *patch])  # one window per call, as predict runs it
    return net


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m particleseg.inference.quantize MODEL DATASET``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model file (python -m ...inference.export)")
    parser.add_argument("dataset", type=Path, help="a dataset folder with dataset.json")
    parser.add_argument("--split", default="val", help="the scans to calibrate on (not a test)")
    parser.add_argument("--crops", type=int, default=N_CROPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default: MODEL.int8.xml")
    args = parser.parse_args(argv)
    try:
        if not args.model.is_file():
            raise ValueError(f"{args.model}: model file not found")
        if "test" in args.split:
            raise ValueError(f"--split {args.split}: calibrate on validation scans, not a test")
        crops = calibration_crops(
            load_checkpoint(args.model), args.dataset, args.split, args.crops, args.seed
        )
        path = quantize_int8(args.model, crops, args.out)
    except ValueError as err:
        parser.exit(2, f"quantize: {err}\n")
    size = path.with_suffix(".bin").stat().st_size / 2**20
    print(f"{path} (+ .bin, {size:.1f} MiB), calibrated on {len(crops)} crops of {args.split}")


if __name__ == "__main__":
    main()
