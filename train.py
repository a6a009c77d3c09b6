"""train.py: train the border-core U-Net (see README.md "Training").

python train.py experiment=cpu_small
python train.py experiment=cpu_small sweep=particle_size_border
python train.py resume=outputs/train/RUN
"""

import hydra
from omegaconf import DictConfig

import particleseg.config  # noqa: F401  (registers the resolvers the configs use)
from particleseg.entry import guarded, quiet_third_party, take_debug_flag


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Compose the config and run :func:`particleseg.tasks.train`; return the best metric.

    Bad input (a dataset, checkpoint or run folder that cannot be used) ends with the message
    and exit status 2; a fresh run folder that got no checkpoint is removed, so nothing looks
    like a run (``--debug`` shows the traceback).
    """
    from hydra.core.hydra_config import HydraConfig

    quiet_third_party()

    from particleseg.tasks import train
    from particleseg.training import discard_unstarted_run

    def discard() -> None:
        if not cfg.get("resume"):
            discard_unstarted_run(HydraConfig.get().runtime.output_dir)

    return guarded("train.py", lambda: train(cfg), on_error=discard)


if __name__ == "__main__":
    take_debug_flag()
    main()
