"""train.py: not built yet; it will train the border-core U-Net (see README.md)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.train`."""
    from particleseg.tasks import train

    train(cfg)


if __name__ == "__main__":
    main()
