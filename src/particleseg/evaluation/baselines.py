"""The classical baselines as segmenters: parameters from a file, or tuned on a train split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def baseline_segmenter(cfg: DictConfig, dataset, out_dir: Path):
    """The configured baseline with parameters from a file, from tuning on train, or as given.

    ``cfg.baseline.name`` picks the baseline (``threshwater``, the default, or ``snow``; see
    :data:`particleseg.baselines.BASELINES`). A tuning run saves ``<name>_params.json`` in
    ``out_dir``; untuned parameters the tuner stores (ThreshWater's ``connectivity``, SNOW's
    ``min_size``) come from ``cfg.baseline.segment`` unless the ``tune`` section sets them.

    Returns:
        ``(segment, name)``: ``segment(image) -> labels`` and the baseline's display name.
    """
    from hydra.utils import instantiate

    from particleseg.baselines import BASELINES, load_params, save_params
    from particleseg.io import read_sample

    base = cfg.baseline
    key = base.get("name") or "threshwater"
    if key not in BASELINES:
        raise ValueError(f"baseline.name={key!r}: unknown baseline; one of {sorted(BASELINES)}")
    spec = BASELINES[key]
    params: dict = {}
    if base.get("params_file"):
        params = load_params(base.params_file, key)["params"]
        log.info("%s parameters from %s: %s", spec.name, base.params_file, params)
    elif base.get("tune"):
        train = dataset.split("train")[: base.tune.max_samples]
        if not train:
            raise ValueError(
                f"{dataset.root}/dataset.json: no train samples to tune {spec.name} on"
            )
        images, labels = [], []
        for entry in train:
            image, label = read_sample(entry)
            images.append(np.asarray(image))
            labels.append(np.asarray(label))
        grid = OmegaConf.to_container(base.tune, resolve=True)
        grid.pop("max_samples", None)
        segment_cfg = base.get("segment") or {}
        for name in spec.fixed:
            if name not in grid and segment_cfg.get(name) is not None:
                grid[name] = segment_cfg[name]
        log.info("tuning %s on %d train samples", spec.name, len(train))
        result = spec.tune(images, labels, **grid)
        save_params(out_dir / f"{key}_params.json", result)
        params = result["params"]
        log.info(
            "tuned %s: %s (train %s %.3f)", spec.name, params, result["metric"], result["score"]
        )
    segment = instantiate(base.segment)
    return (lambda image: segment(image, **params)), spec.name
