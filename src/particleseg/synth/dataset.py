"""Build a synthetic micro-CT dataset folder: dataset.json, images/, labels/ and phases/.

Each sample is a scene scanned by the CT simulator (:mod:`particleseg.synth.ct`, full physics or
the fast image-space mode), written as a uint16 image, uint32 labels and a uint8 phase map
(:mod:`particleseg.synth.phases`) with its spacing and mean particle size. A scene is particles in
a resin cylinder or in a matrix filling the field of view (``kind: cylinder``, the default:
:mod:`particleseg.synth.scene`) or a dense granular packing (``kind: granular``:
:mod:`particleseg.synth.granular`). A split gives its scene and CT settings directly, or a list
of weighted ``variants`` of which each sample draws one. The splits and how ``ood_test`` differs
from ``train`` come from the config (``conf/synth/default.yaml``, ``conf/synth/wide.yaml``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from particleseg.io import write_dataset_json, write_volume
from particleseg.synth.phases import PHASE_CODES


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


@dataclasses.dataclass(frozen=True)
class SyntheticSample:
    """One scanned synthetic sample.

    Attributes:
        image: (Z, Y, X) uint16 reconstructed scan.
        labels: (Z, Y, X) uint32 particle ids 1..N.
        phases: (Z, Y, X) uint8 phase map (codes in :mod:`particleseg.synth.phases`).
        info: the drawn scene and CT settings, timings and the scene's scalar facts.
    """

    image: np.ndarray
    labels: np.ndarray
    phases: np.ndarray
    info: dict


SCENE_KINDS: tuple[str, ...] = ("cylinder", "granular")


def _render_scene(kind: str, shape: tuple[int, int, int], scene: dict, rng: np.random.Generator):
    """The scene of one kind (see :data:`SCENE_KINDS`)."""
    if kind == "cylinder":
        from particleseg.synth.scene import SceneParams, render_scene

        return render_scene(shape, SceneParams(**scene), rng)
    if kind == "granular":
        from particleseg.synth.granular import GranularParams, render_granular

        return render_granular(shape, GranularParams(**scene), rng)
    raise ValueError(f"scene kind must be one of {SCENE_KINDS}, got {kind!r}")


def render_sample(
    shape: tuple[int, int, int],
    scene: Mapping,
    ct: Mapping,
    mode: str,
    seed: int,
) -> SyntheticSample:
    """Render one scanned sample with its labels and phase map.

    Args:
        shape: (Z, Y, X) volume shape.
        scene: ``kind`` (``"cylinder"``, the default, or ``"granular"``) and the keyword
            arguments of :class:`particleseg.synth.scene.SceneParams` or
            :class:`particleseg.synth.granular.GranularParams`.
        ct: keyword arguments of ``CTParams``; in fast mode they are translated by
            :func:`fast_ct_params`.
        mode: ``"full"`` (projection, noise, FBP) or ``"fast"`` (image-space approximation).
        seed: random seed.

    Returns:
        The :class:`SyntheticSample`; ``info`` records the ``kind``.
    """
    from particleseg.synth import ct as ct_module

    if mode not in ("full", "fast"):
        raise ValueError(f"mode must be 'full' or 'fast', got {mode!r}")
    rng = np.random.default_rng(seed)
    scene = draw_params(scene, rng)
    ct = draw_params(ct, rng)
    kind = str(scene.pop("kind", "cylinder"))
    if kind not in SCENE_KINDS:
        raise ValueError(f"scene kind must be one of {SCENE_KINDS}, got {kind!r}")
    t = time.perf_counter()
    sample = _render_scene(kind, tuple(shape), scene, rng)
    t_scene = time.perf_counter() - t
    t = time.perf_counter()
    if mode == "full":
        recon = ct_module.simulate_ct(sample.mu, ct_module.CTParams(**ct), rng)
    else:
        fast = ct_module.FastCTParams(**fast_ct_params(ct))
        recon = ct_module.simulate_ct_fast(sample.mu, fast, rng)
    image = ct_module.to_uint16(recon, rng)
    info = {
        "kind": kind,
        "scene": scene,
        "ct": ct,
        "seconds_scene": round(t_scene, 2),
        "seconds_ct": round(time.perf_counter() - t, 2),
        **{k: v for k, v in sample.info.items() if np.isscalar(v)},
        "phase_mu": sample.info["phase_mu"],
    }
    return SyntheticSample(image, sample.labels, sample.phases, info)


#: Stream of the variant draw, apart from the scene's (which starts from the bare sample seed).
_VARIANT_STREAM = 0x76617269


def check_split(split: str, spec: Mapping) -> None:
    """Raise a ValueError naming the split when its spec is malformed.

    A split has ``n`` and ``shape``, and either ``scene`` / ``ct`` or ``variants``: a non-empty
    list of ``{name, weight, scene, ct}`` with distinct names and positive weights.
    """
    where = f"synth split {split!r}"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(spec).__name__}")
    for key in ("n", "shape"):
        if key not in spec:
            raise ValueError(f"{where}: missing {key!r}")
    if "variants" not in spec:
        return
    if "scene" in spec or "ct" in spec:
        raise ValueError(f"{where}: give either 'variants' or 'scene'/'ct', not both")
    variants = spec["variants"]
    if not isinstance(variants, list | tuple) or not variants:
        raise ValueError(f"{where}: 'variants' must be a non-empty list, got {variants!r}")
    names = set()
    for k, variant in enumerate(variants):
        if not isinstance(variant, Mapping) or not isinstance(variant.get("name"), str):
            raise ValueError(f"{where}: variant {k} must be a mapping with a string 'name'")
        name = variant["name"]
        if name in names:
            raise ValueError(f"{where}: variant name {name!r} is used twice")
        names.add(name)
        weight = variant.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ValueError(f"{where}: variant {name!r} needs a positive weight, got {weight!r}")
        unknown = set(variant) - {"name", "weight", "scene", "ct"}
        if unknown:
            raise ValueError(f"{where}: variant {name!r} has unknown keys {sorted(unknown)}")


def choose_variant(spec: Mapping, seed: int) -> tuple[str | None, Mapping, Mapping]:
    """The scene and CT settings of one sample of a split.

    Without ``variants`` these are the split's own (and nothing is drawn, so such splits render
    exactly as before variants existed). With them, one variant is drawn by weight from a
    random stream of its own, derived from the sample seed.

    Args:
        spec: the split's settings (see :func:`check_split`).
        seed: the sample seed (:func:`sample_seed`).

    Returns:
        ``(variant name or None, scene spec, ct spec)``.
    """
    if "variants" not in spec:
        return None, spec.get("scene", {}), spec.get("ct", {})
    variants = list(spec["variants"])
    weights = np.array([float(v.get("weight", 1.0)) for v in variants])
    rng = np.random.default_rng([int(seed), _VARIANT_STREAM])
    variant = variants[int(rng.choice(len(variants), p=weights / weights.sum()))]
    return str(variant["name"]), variant.get("scene", {}), variant.get("ct", {})


_ATTEMPTS = 4


def render_split_sample(spec: Mapping, mode: str, seed: int) -> SyntheticSample:
    """Render one sample of a split: pick its variant (if any), then :func:`render_sample`.

    A scene that holds no particle at all (possible when big particles meet a small volume) is
    drawn again from a seed derived from ``seed``, at most three times; ``info["retries"]`` then
    says how often.

    Returns:
        The :class:`SyntheticSample`; with variants, ``info["variant"]`` names the one drawn.

    Raises:
        ValueError: when no attempt holds a particle.
    """
    variant, scene, ct = choose_variant(spec, seed)
    for attempt in range(_ATTEMPTS):
        retry_seed = seed if attempt == 0 else sample_seed(seed, "retry", attempt)
        sample = render_sample(tuple(spec["shape"]), scene, ct, mode, retry_seed)
        if sample.labels.any():
            break
    else:
        raise ValueError(
            f"a sample of shape {list(spec['shape'])} (seed {seed}, variant {variant}) held no "
            f"particle in {_ATTEMPTS} attempts: particles too large for the volume?"
        )
    if attempt:
        sample.info["retries"] = attempt
    if variant is not None:
        sample.info["variant"] = variant
    return sample


def make_sample(
    shape: tuple[int, int, int],
    scene: Mapping,
    ct: Mapping,
    mode: str,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render one scanned sample: :func:`render_sample` without the phase map.

    Returns:
        (Z, Y, X) uint16 image, (Z, Y, X) uint32 labels, and an info dict.
    """
    sample = render_sample(shape, scene, ct, mode, seed)
    return sample.image, sample.labels, sample.info


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
            ``train``, ``val``, ``id_test`` and ``ood_test``; instead of ``scene`` and ``ct`` a
            split may give ``"variants": [{"name", "weight", "scene", "ct"}, ...]``, of which
            each sample draws one (:func:`choose_variant`).
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
    for split, spec in splits.items():
        check_split(split, spec)
    jobs = [(split, i) for split, spec in splits.items() for i in range(int(spec["n"]))]
    samples = []
    for split, i in tqdm(jobs, desc=f"synth {name}", unit="sample", disable=not progress):
        sample_name = f"{split}_{i:03d}"
        sample = render_split_sample(splits[split], mode, sample_seed(seed, split, i))
        spacing = (spacing_mm,) * 3
        for folder, array in (("images", sample.image), ("labels", sample.labels)):
            write_volume(out / folder / f"{sample_name}.tif", array, spacing=spacing)
        write_volume(out / "phases" / f"{sample_name}.tif", sample.phases, spacing=spacing)
        diameter_px = mean_equivalent_diameter(sample.labels)
        samples.append(
            {
                "name": sample_name,
                "image": f"images/{sample_name}.tif",
                "label": f"labels/{sample_name}.tif",
                "phases": f"phases/{sample_name}.tif",
                "spacing": [spacing_mm] * 3,
                "particle_size": round(diameter_px * spacing_mm, 6),
                "split": split,
                "group": sample_name,
                "info": sample.info,
            }
        )
    return write_dataset_json(
        out,
        name=name,
        samples=samples,
        unit="mm",
        description=description,
        ood_differences=ood_differences,
        phase_codes=PHASE_CODES,
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
