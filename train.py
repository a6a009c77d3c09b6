"""train.py: train the border-core U-Net (see README.md "Training").

python train.py experiment=cpu_small
python train.py experiment=cpu_small sweep=particle_size_border
python train.py resume=outputs/train/RUN
"""

import hydra
from omegaconf import DictConfig

import particleseg.config  # noqa: F401  (registers the resolvers the configs use)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Compose the config and run :func:`particleseg.tasks.train`; return the best metric."""
    from particleseg.tasks import train

    return train(cfg)


if __name__ == "__main__":
    main()
