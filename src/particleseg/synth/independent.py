"""An out-of-distribution test split from code the training generator never used.

``python -m particleseg.synth.independent [--config FILE] [--out-dir DIR]`` builds
``data/ood_independent`` from ``conf/synth/ood_independent.yaml``: a fixed set of scans on which
every model is scored. The grains come from :mod:`.independent_geometry` (Voronoi fragments and
porespy's gravity packing and blobs), the scanner from :mod:`.independent_imaging` (scikit-image
radon / iradon, rational beam hardening, kernel scatter, Lorentzian PSF, Poisson-Gaussian noise).
Neither imports the training generator's geometry or CT modules (``_shapes``, ``particles``,
``_placement``, ``scene``, ``ct``, ``ct_fast``, ``_ct_kernels``); only
:func:`particleseg.synth.dataset.sample_seed` and ``mean_equivalent_diameter`` are shared, for
the seeds and the metadata.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from particleseg.config import CONF_DIR
from particleseg.io import write_dataset_json, write_volume
from particleseg.synth.dataset import mean_equivalent_diameter, sample_seed
from particleseg.synth.independent_geometry import (
    MATRIX_MU,
    attenuation_map,
    container_mask,
    make_geometry,
    touching_fraction,
)
from particleseg.synth.independent_imaging import FILTERS, INTERPOLATIONS, scan

CONFIG = CONF_DIR / "synth" / "ood_independent.yaml"
FAMILIES = ("voronoi", "gravity", "blobs")
SPLIT = "ood_test"

# key -> (kind, bounds): kind "float" / "int" take [low, high], "str" the allowed values,
# "range" a [low, high] pair inside the bounds. Any value may also be a distribution:
# {uniform: [a, b]} or {loguniform: [a, b]} (float), or {choice: [...]} (any kind).
SPEC: dict[str, dict[str, tuple[str, Any]]] = {
    "geometry": {
        "size_px": ("float", (4.0, 60.0)),
        "container_radius": ("float", (0.5, 0.98)),
        "keep_fraction": ("float", (0.05, 1.0)),
        "fill": ("float", (0.05, 0.6)),
        "density_contrast": ("float", (0.0, 2.0)),
        "deformation_px": ("float", (0.0, 10.0)),
        "touching": ("float", (0.0, 1.0)),
        "erosion_px": ("float", (0.0, 6.0)),
        "roughness_px": ("float", (0.0, 5.0)),
        "min_voxels": ("int", (1, 100000)),
    },
    "materials": {
        "n_materials": ("int", (1, 8)),
        "material_mu_range": ("range", (0.001, 0.5)),
        "matrix": ("str", tuple(MATRIX_MU)),
        "intergrown_fraction": ("float", (0.0, 1.0)),
        "n_bubbles": ("int", (0, 200)),
    },
    "imaging": {
        "voxel_box_px": ("float", (1.0, 4.0)),
        "angles_per_width": ("float", (0.2, 4.0)),
        "beam_hardening": ("float", (0.0, 1.0)),
        "scatter": ("float", (0.0, 1.0)),
        "psf_gamma_px": ("float", (0.0, 5.0)),
        "photons": ("float", (10.0, 1e7)),
        "read_noise": ("float", (0.0, 1e4)),
        "crosstalk": ("float", (0.0, 0.45)),
        "bad_pixels": ("int", (0, 50)),
        "bad_pixel_gain": ("float", (0.0, 0.9)),
        "filter": ("str", FILTERS),
        "interpolation": ("str", INTERPOLATIONS),
        "gain_level": ("float", (1000.0, 65535.0)),
        "offset": ("float", (0.0, 60000.0)),
    },
}
TOP = ("out_dir", "name", "seed", "n", "shape", "spacing_mm", "families", "progress")
TOP += ("description", *SPEC)

DESCRIPTION = (
    "Independent out-of-distribution test split (particleseg.synth.independent): grains from "
    "porespy's generators (pseudo_gravity_packing spheres settled under gravity, blobs split by "
    "the SNOW watershed) and from Voronoi fragmentation, warped and eroded with a rough "
    "per-grain depth, some touching; 2-4 materials with intergrown phases in resin, water or "
    "air inside a plastic tube; scanned by a scanner model written apart from the training "
    "simulator (scikit-image radon/iradon). Every model is scored on these same scans."
)
OOD_DIFFERENCES = [
    "geometry source: Voronoi cells of seeds with varying density (angular fragments), porespy "
    "pseudo_gravity_packing spheres of three radii (a settled pile at the bottom) and porespy "
    "blobs split by snow_partitioning, each warped by a smooth displacement field and eroded "
    "with a noisy per-grain depth; the training generator's shape families (polyhedra, stars, "
    "concave, ellipsoids, needles, flakes), inclusions, cracks, pores and placement are not used",
    "materials: 2-4 per scan, attenuation log-uniform in one of the configured ranges, "
    "grains intergrown with a second material; matrix resin, water or air; a container wall",
    "projection: scikit-image radon (image rotation) over 0.6-1.0 x width angles (training: "
    "its own Joseph projector, max(90, 1.5 x width) angles)",
    "beam hardening: rational law p / (1 + beta p) (training: a two-bin spectrum)",
    "scatter: primary x line integral spread by an exponential kernel along the detector "
    "(training: a uniform background per detector row)",
    "blur: a box voxel footprint of 1-2 voxels and a 2D Lorentzian (Cauchy) detector PSF "
    "(training: a Gaussian detector blur)",
    "noise: Gaussian form of mixed Poisson-Gaussian noise on the counts, quantum noise "
    "correlated between neighbouring detector columns (cross-talk) plus electronic read noise "
    "(training: Poisson sampling of the counts, no electronic noise)",
    "rings: a few miscalibrated detector pixels over runs of rows (training: a small gain error "
    "on every detector pixel)",
    "reconstruction: scikit-image iradon with a cosine or hamming filter and linear or cubic "
    "interpolation (training: its own FBP with ramp, shepp-logan or hann and linear "
    "interpolation)",
    "quantization: uint16 with the 99.9th percentile at a random level and a random offset "
    "(training: a random gain per unit attenuation and offset)",
]


def _bad(key: str, message: str) -> ValueError:
    return ValueError(f"config key {key!r}: {message}")


def _check_value(key: str, kind: str, bounds: Any, value: Any) -> Any:
    """Check one plain value against its kind and bounds; return it as a plain Python value."""
    if kind == "str":
        if value not in bounds:
            raise _bad(key, f"must be one of {list(bounds)}, got {value!r}")
        return str(value)
    if kind == "range":
        if not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2):
            raise _bad(key, f"must be a [low, high] pair, got {value!r}")
        low, high = (_check_value(key, "float", bounds, v) for v in value)
        if not low < high:
            raise _bad(key, f"needs low < high, got {value!r}")
        return [low, high]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(key, f"must be a number, got {value!r}")
    if kind == "int" and int(value) != value:
        raise _bad(key, f"must be an integer, got {value!r}")
    if not (bounds[0] <= value <= bounds[1]) or not np.isfinite(value):
        raise _bad(key, f"must be in [{bounds[0]}, {bounds[1]}], got {value!r}")
    return int(value) if kind == "int" else float(value)


def _check_param(key: str, kind: str, bounds: Any, value: Any) -> Any:
    """Check a value or a distribution of values; return it in plain form."""
    if not isinstance(value, Mapping):
        return _check_value(key, kind, bounds, value)
    if len(value) != 1 or next(iter(value)) not in ("uniform", "loguniform", "choice"):
        raise _bad(key, f"a distribution is {{uniform|loguniform|choice: [...]}}, got {value!r}")
    draw, args = next(iter(value.items()))
    if not isinstance(args, Sequence) or isinstance(args, str) or len(args) == 0:
        raise _bad(key, f"{draw} needs a list, got {args!r}")
    if draw == "choice":
        return {"choice": [_check_value(key, kind, bounds, v) for v in args]}
    if kind != "float":
        raise _bad(key, f"{draw} is only for real-valued keys; use choice")
    if len(args) != 2:
        raise _bad(key, f"{draw} needs [low, high], got {list(args)!r}")
    low, high = (_check_value(key, kind, bounds, v) for v in args)
    if not low <= high or (draw == "loguniform" and low <= 0):
        raise _bad(key, f"{draw} needs 0 < low <= high, got {list(args)!r}")
    return {draw: [low, high]}


def validate_config(config: Mapping) -> dict:
    """Check a split config and return it in plain form (lists, dicts, floats, ints, strs).

    Args:
        config: the contents of ``conf/synth/ood_independent.yaml`` (or the same keys).

    Returns:
        The checked config.

    Raises:
        ValueError: For the first bad or unknown key, naming it (``"imaging.photons"``).
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    for key in config:
        if key not in TOP:
            raise _bad(str(key), f"unknown key; use {list(TOP)}")
    out: dict[str, Any] = {}
    for key in ("out_dir", "name"):
        if key in config and not isinstance(config[key], str | Path):
            raise _bad(key, f"must be a string, got {config[key]!r}")
        out[key] = str(config.get(key, "data/ood_independent" if key == "out_dir" else ""))
    out["name"] = out["name"] or "ood-independent"
    out["description"] = str(config.get("description", DESCRIPTION))
    out["progress"] = bool(config.get("progress", True))
    out["seed"] = _check_value("seed", "int", (0, 2**63 - 1), config.get("seed", 0))
    out["n"] = _check_value("n", "int", (1, 10000), config.get("n", 8))
    spacing = config.get("spacing_mm", 0.01)
    out["spacing_mm"] = _check_value("spacing_mm", "float", (1e-9, 1e3), spacing)
    shape = config.get("shape", [96, 160, 160])
    if not (isinstance(shape, Sequence) and len(shape) == 3):
        raise _bad("shape", f"must be [Z, Y, X], got {shape!r}")
    out["shape"] = [_check_value("shape", "int", (8, 4096), s) for s in shape]
    if out["shape"][1] != out["shape"][2]:
        raise _bad("shape", f"needs square slices (Y == X) for the scan, got {out['shape']}")
    families = config.get("families", list(FAMILIES))
    if isinstance(families, str) or not isinstance(families, Sequence) or not families:
        raise _bad("families", f"must be a non-empty list of {list(FAMILIES)}, got {families!r}")
    out["families"] = [_check_value("families", "str", FAMILIES, f) for f in families]
    for group, spec in SPEC.items():
        given = config.get(group, {})
        if not isinstance(given, Mapping):
            raise _bad(group, f"must be a mapping, got {given!r}")
        for key in given:
            if key not in spec:
                raise _bad(f"{group}.{key}", f"unknown key; use {list(spec)}")
        missing = [k for k in spec if k not in given]
        if missing:
            raise _bad(f"{group}.{missing[0]}", "missing")
        out[group] = {k: _check_param(f"{group}.{k}", *spec[k], given[k]) for k in spec}
    return out


def draw_settings(spec: Mapping, rng: np.random.Generator) -> dict:
    """Resolve the distributions of one checked config group for one sample.

    Args:
        spec: key -> value or ``{uniform|loguniform|choice: [...]}`` (checked).
        rng: random generator of the sample.

    Returns:
        key -> concrete value, drawn in the order of the keys.
    """
    out = {}
    for key, value in spec.items():
        if isinstance(value, Mapping):
            [(draw, args)] = value.items()
            if draw == "choice":
                out[key] = args[int(rng.integers(len(args)))]
            elif draw == "uniform":
                out[key] = float(rng.uniform(args[0], args[1]))
            else:
                out[key] = float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
        else:
            out[key] = value
    return out


def render_independent_sample(
    shape: Sequence[int], family: str, config: Mapping, seed: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Draw, build and scan one sample.

    Args:
        shape: (Z, Y, X) volume shape, Y == X.
        family: geometry family, one of :data:`FAMILIES`.
        config: a checked config (:func:`validate_config`); its ``geometry``, ``materials`` and
            ``imaging`` groups are drawn for this sample.
        seed: the sample's seed.

    Returns:
        ``(image, labels, info)``: (Z, Y, X) uint16 scan, (Z, Y, X) uint32 labels 1..N (each a
        6-connected piece), and the drawn settings with the sample's facts.
    """
    rng = np.random.default_rng(seed)
    geometry = draw_settings(config["geometry"], rng)
    materials = draw_settings(config["materials"], rng)
    imaging = draw_settings(config["imaging"], rng)
    t = time.perf_counter()
    shape = tuple(int(s) for s in shape)
    labels = make_geometry(shape, family, geometry, rng)
    low, high = materials["material_mu_range"]
    material_mu = np.sort(np.exp(rng.uniform(np.log(low), np.log(high), materials["n_materials"])))
    container = container_mask(shape, float(geometry["container_radius"]))
    mu, grain_material = attenuation_map(
        labels,
        container,
        material_mu,
        MATRIX_MU[materials["matrix"]],
        materials["intergrown_fraction"],
        materials["n_bubbles"],
        rng,
    )
    t_geometry = time.perf_counter() - t
    t = time.perf_counter()
    image = scan(mu, imaging, rng)
    n = int(labels.max())
    info = {
        "family": family,
        "seed": int(seed),
        "geometry": geometry,
        "materials": {**materials, "material_mu": [round(float(m), 6) for m in material_mu]},
        "imaging": imaging,
        "n_particles": n,
        "mean_diameter_px": round(mean_equivalent_diameter(labels), 3),
        "touching_fraction": round(touching_fraction(labels), 4),
        "volume_fraction": round(float((labels > 0).mean()), 4),
        "particles_per_material": np.bincount(grain_material[1:], minlength=len(material_mu))
        .astype(int)
        .tolist(),
        "seconds_geometry": round(t_geometry, 2),
        "seconds_scan": round(time.perf_counter() - t, 2),
    }
    return image, labels, info


def build_independent_dataset(
    out_dir: str | Path, config: Mapping | None = None, progress: bool | None = None
) -> Path:
    """Write the independent OOD split: ``images/``, ``labels/`` and ``dataset.json``.

    Args:
        out_dir: folder to create; must not hold a ``dataset.json`` yet.
        config: the split config (default: ``conf/synth/ood_independent.yaml``); checked by
            :func:`validate_config`. Its ``out_dir`` is ignored in favour of ``out_dir``.
        progress: show a progress bar (default: the config's ``progress``).

    Returns:
        Path of ``dataset.json``, written last (a folder without it is an interrupted build).

    Raises:
        ValueError: If the config is bad (naming the key) or ``out_dir`` already holds a
            dataset.
    """
    from tqdm.auto import tqdm

    cfg = validate_config(load_config(CONFIG) if config is None else config)
    out = Path(out_dir)
    if (out / "dataset.json").exists():
        raise ValueError(f"{out / 'dataset.json'}: a dataset is already there; pick another folder")
    show = cfg["progress"] if progress is None else progress
    samples = []
    start = time.perf_counter()
    for i in tqdm(range(cfg["n"]), desc=cfg["name"], unit="sample", disable=not show):
        name = f"indep_{i:03d}"
        family = cfg["families"][i % len(cfg["families"])]
        seed = sample_seed(cfg["seed"], SPLIT, i)
        image, labels, info = render_independent_sample(cfg["shape"], family, cfg, seed)
        spacing = (cfg["spacing_mm"],) * 3
        write_volume(out / "images" / f"{name}.tif", image, spacing=spacing)
        write_volume(out / "labels" / f"{name}.tif", labels, spacing=spacing)
        samples.append(
            {
                "name": name,
                "image": f"images/{name}.tif",
                "label": f"labels/{name}.tif",
                "spacing": list(spacing),
                "particle_size": round(info["mean_diameter_px"] * cfg["spacing_mm"], 6),
                "split": SPLIT,
                "group": name,
                "info": info,
            }
        )
    seconds = round(time.perf_counter() - start, 1)
    return write_dataset_json(
        out,
        name=cfg["name"],
        samples=samples,
        description=cfg["description"],
        unit="mm",
        ood_differences=OOD_DIFFERENCES,
        generator="particleseg.synth.independent",
        seed=cfg["seed"],
        config={k: v for k, v in cfg.items() if k not in ("out_dir", "progress")},
        seconds_build=seconds,
    )


def load_config(path: str | Path) -> dict:
    """Read a YAML config file.

    Raises:
        ValueError: If the file is missing or is not a YAML mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such config file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: must hold a mapping of config keys")
    return doc


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: build the split; bad input exits with status 2 and one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG), help="split config (YAML)")
    parser.add_argument("--out-dir", default=None, help="output folder (default: the config's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        cfg = validate_config(config)
        out_dir = args.out_dir or cfg["out_dir"]
        start = time.perf_counter()
        path = build_independent_dataset(out_dir, config, False if args.no_progress else None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
