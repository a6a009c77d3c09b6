"""predict.py: not built yet; it will predict scans with a trained model (see README.md)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.predict`."""
    from particleseg.tasks import predict

    predict(cfg)


if __name__ == "__main__":
    main()
