"""Build a synthetic micro-CT dataset: ``python -m particleseg.synth [out_dir=...] [mode=...]``.

Every option is in ``conf/synth/default.yaml`` (Hydra overrides, e.g. ``splits.train.n=40``).
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from particleseg.config import CONF_DIR

CONF = CONF_DIR / "synth"


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="default")
def main(cfg: DictConfig) -> None:
    """Compose the config and build the dataset."""
    from particleseg.synth.dataset import build_dataset

    options = OmegaConf.to_container(cfg, resolve=True)
    options.pop("hydra", None)
    path = build_dataset(**options)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
