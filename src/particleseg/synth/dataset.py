"""Build a synthetic micro-CT dataset folder: ``dataset.json``, ``images/``, ``labels/``.

Each sample is a resin cylinder of particles (:mod:`particleseg.synth.scene`) scanned by the CT
simulator (:mod:`particleseg.synth.ct`, full physics or the fast image-space mode), written as a
uint16 image and uint32 labels with its spacing and mean particle size. The splits and how
``ood_test`` differs from ``train`` come from the config (``conf/synth/default.yaml``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from particleseg.io import write_dataset_json, write_volume


def sample_seed(base_seed: int, split: str, index: int) -> int:
    """A stable seed per sample, independent of how many samples other splits have."""
    digest = hashlib.sha256(f"{base_seed}/{split}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def mean_equivalent_diameter(labels: np.ndarray) -> float:
    """Mean equivalent-sphere diameter of the labelled particles, in voxels (0 if none)."""
    sizes = np.bincount(labels.ravel())[1:]
    sizes = sizes[sizes > 0]
    if len(sizes) == 0:
        return 0.0
    return float(np.mean(np.cbrt(6.0 * sizes / np.pi)))


def draw_params(spec: Mapping, rng: np.random.Generator) -> dict:
    """Resolve per-sample random values in a parameter spec.

    A value written as ``{"uniform": [a, b]}``, ``{"loguniform": [a, b]}`` or
    ``{"choice": [...]}`` is drawn for this sample; everything else is passed through. This is
    how a split varies noise, contrast or artefact strength from sample to sample.

    Args:
        spec: parameter name -> value or distribution.
        rng: random generator of this sample.

    Returns:
        Parameter name -> concrete value.
    """
    out = {}
    for key, value in dict(spec).items():
        if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _DRAWS:
            kind, args = next(iter(value.items()))
            out[key] = _DRAWS[kind](rng, list(args))
        else:
            out[key] = _plain(value)
    return out


_DRAWS = {
    "uniform": lambda rng, a: float(rng.uniform(a[0], a[1])),
    "loguniform": lambda rng, a: float(np.exp(rng.uniform(np.log(a[0]), np.log(a[1])))),
    "choice": lambda rng, a: _plain(a[int(rng.integers(len(a)))]),
}


def fast_ct_params(ct: Mapping) -> dict:
    """Translate full-physics CT knobs into the fast mode's, so one config drives both modes.

    Noise scales as 1/sqrt(photons) (``noise_sigma`` 0.25 matches 500 photons), cupping follows
    the beam-hardening strength, rings and blur carry over. Knobs of the fast mode itself
    (``noise_sigma``, ``cupping``, ``blur``, ...) pass through unchanged.

    Args:
        ct: keyword arguments for ``CTParams`` and/or ``FastCTParams``.

    Returns:
        Keyword arguments for ``FastCTParams``.
    """
    ct = dict(ct)
    out = {k: ct.pop(k) for k in list(ct) if k in _FAST_ONLY}
    photons = ct.pop("photons", None)
    if photons is not None and "noise_sigma" not in out:
        out["noise_sigma"] = 0.25 * float(np.sqrt(500.0 / float(photons)))
    if "beam_hardening" in ct and "cupping" not in out:
        out["cupping"] = float(ct.pop("beam_hardening"))
    if "detector_blur" in ct and "blur" not in out:
        out["blur"] = float(ct.pop("detector_blur"))
    for key in ("ring_strength", "filter"):
        if key in ct:
            out[key] = ct.pop(key)
    return out


_FAST_ONLY = ("noise_sigma", "cupping", "blur", "reference_mu", "coarse_size")


def make_sample(
    shape: tuple[int, int, int],
    scene: Mapping,
    ct: Mapping,
    mode: str,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render one scanned sample.

    Args:
        shape: (Z, Y, X) volume shape.
        scene: keyword arguments of :class:`particleseg.synth.scene.SceneParams`.
        ct: keyword arguments of ``CTParams``; in fast mode they are translated by
            :func:`fast_ct_params`.
        mode: ``"full"`` (projection, noise, FBP) or ``"fast"`` (image-space approximation).
        seed: random seed.

    Returns:
        (Z, Y, X) uint16 image, (Z, Y, X) uint32 labels, and an info dict.
    """
    from particleseg.synth import ct as ct_module
    from particleseg.synth.scene import SceneParams, render_scene

    if mode not in ("full", "fast"):
        raise ValueError(f"mode must be 'full' or 'fast', got {mode!r}")
    rng = np.random.default_rng(seed)
    scene = draw_params(scene, rng)
    ct = draw_params(ct, rng)
    t = time.perf_counter()
    sample = render_scene(tuple(shape), SceneParams(**scene), rng)
    t_scene = time.perf_counter() - t
    t = time.perf_counter()
    if mode == "full":
        recon = ct_module.simulate_ct(sample.mu, ct_module.CTParams(**ct), rng)
    else:
        fast = ct_module.FastCTParams(**fast_ct_params(ct))
        recon = ct_module.simulate_ct_fast(sample.mu, fast, rng)
    image = ct_module.to_uint16(recon, rng)
    info = {
        "scene": scene,
        "ct": ct,
        "seconds_scene": round(t_scene, 2),
        "seconds_ct": round(time.perf_counter() - t, 2),
        **{k: v for k, v in sample.info.items() if np.isscalar(v)},
    }
    return image, sample.labels, info


def build_dataset(
    out_dir: str | Path,
    splits: Mapping,
    *,
    name: str = "synthetic",
    seed: int = 0,
    mode: str = "fast",
    spacing_mm: float = 0.01,
    description: str = "",
    ood_differences: str = "",
    progress: bool = True,
) -> Path:
    """Write a complete dataset folder.

    Args:
        out_dir: folder to create; must not hold a ``dataset.json`` yet.
        splits: ``{split: {"n": int, "shape": [Z, Y, X], "scene": {...}, "ct": {...}}}`` for
            ``train``, ``id_test`` and ``ood_test``.
        name: dataset name.
        seed: base seed; sample seeds derive from it, the split and the index.
        mode: ``"full"`` or ``"fast"`` CT simulation.
        spacing_mm: isotropic voxel size written into the metadata.
        description: free text for ``dataset.json``.
        ood_differences: how ``ood_test`` differs from ``train``, for ``dataset.json``.
        progress: show a progress bar.

    Returns:
        Path of the written ``dataset.json`` (written last, so a folder without it is an
        interrupted build).
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    if (out / "dataset.json").exists():
        raise ValueError(f"{out / 'dataset.json'}: a dataset is already there; pick another folder")
    jobs = [(split, i) for split, spec in splits.items() for i in range(int(spec["n"]))]
    samples = []
    for split, i in tqdm(jobs, desc=f"synth {name}", unit="sample", disable=not progress):
        spec = splits[split]
        sample_name = f"{split}_{i:03d}"
        image, labels, info = make_sample(
            tuple(spec["shape"]),
            spec.get("scene", {}),
            spec.get("ct", {}),
            mode,
            sample_seed(seed, split, i),
        )
        write_volume(out / "images" / f"{sample_name}.tif", image, spacing=(spacing_mm,) * 3)
        write_volume(out / "labels" / f"{sample_name}.tif", labels, spacing=(spacing_mm,) * 3)
        diameter_px = mean_equivalent_diameter(labels)
        samples.append(
            {
                "name": sample_name,
                "image": f"images/{sample_name}.tif",
                "label": f"labels/{sample_name}.tif",
                "spacing": [spacing_mm] * 3,
                "particle_size": round(diameter_px * spacing_mm, 6),
                "split": split,
                "group": sample_name,
                "info": info,
            }
        )
    return write_dataset_json(
        out,
        name=name,
        samples=samples,
        unit="mm",
        description=description,
        ood_differences=ood_differences,
        mode=mode,
        seed=seed,
        splits={k: _plain(v) for k, v in splits.items()},
    )


def _plain(obj):
    """Mappings/dataclasses/sequences of plain values, for JSON."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
