"""The ``particleseg`` command: one entry point for every program of the project.

``particleseg predict | train | evaluate | report | synth | annotate | export [OPTIONS]``.
Each subcommand is one of the project's programs; its options are the program's own (Hydra
``KEY=VALUE`` overrides for predict, train, evaluate, report and synth; ``--flags`` for
annotate and export), and ``particleseg SUBCOMMAND --help`` explains them. The root scripts
(``python predict.py``, ``train.py``, ``evaluate.py``) are thin shims over the same functions.
The Hydra configs live in the package (``particleseg/conf``), so an installed particleseg finds
them wherever it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import hydra
from omegaconf import DictConfig

import particleseg.config  # noqa: F401  (registers the resolvers the configs use)
from particleseg.entry import (
    guarded,
    quiet_third_party,
    rename_model_override,
    take_debug_flag,
    take_dry_run_flag,
    take_option_flags,
)


def _prog() -> str:
    return sys.argv[0].replace("\\", "/").split("/")[-1]


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def _predict(cfg: DictConfig) -> None:
    from particleseg.tasks import predict

    quiet_third_party()
    guarded(_prog(), lambda: predict(cfg))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _train(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    quiet_third_party()

    from particleseg.tasks.train import discard_unstarted_run, train

    def discard() -> None:  # a fresh run folder without a checkpoint must not look like a run
        if not cfg.get("resume"):
            discard_unstarted_run(HydraConfig.get().runtime.output_dir)

    return guarded(_prog(), lambda: train(cfg), on_error=discard)


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def _evaluate(cfg: DictConfig) -> None:
    from particleseg.tasks import evaluate

    quiet_third_party()
    guarded(_prog(), lambda: evaluate(cfg))


def _hydra(fn: Callable[[], object], *extra: str, predict_flags: bool = False) -> Callable:
    def run(args: list[str]) -> int:
        sys.argv[1:] = [*extra, *args]
        take_debug_flag()
        if predict_flags:  # --dry-run, -i/-o/-m, model=FILE
            take_dry_run_flag()
            take_option_flags()
            sys.argv[1:] = rename_model_override(sys.argv[1:])
        fn()
        return 0

    return run


def _synth(args: list[str]) -> int:
    from particleseg.synth.__main__ import main as synth_main

    sys.argv[1:] = args
    synth_main()
    return 0


def _annotate(args: list[str]) -> int:
    from particleseg.annotation.cli import main as annotate_main

    return int(annotate_main(args) or 0)


def _export(args: list[str]) -> int:
    from particleseg.inference.export import main as export_main

    export_main(args)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "predict": (
        "segment the particles of a scan, a folder of scans or a dataset",
        _hydra(_predict, predict_flags=True),
    ),
    "train": ("train the border-core U-Net (experiment=NAME, resume=RUN_DIR)", _hydra(_train)),
    "evaluate": (
        "score predictions, or a classical baseline, against reference labels",
        _hydra(_evaluate),
    ),
    "report": (
        "the evaluation report: a model against the classical baselines on every test set",
        _hydra(_evaluate, "--config-name", "report"),
    ),
    "synth": ("build a synthetic micro-CT dataset with reference labels", _synth),
    "annotate": ("annotation tools: segment, split particles, the napari editor", _annotate),
    "export": ("turn a training checkpoint into a model file for predict", _export),
}

USAGE = """usage: particleseg COMMAND [OPTIONS]

Out-of-the-box 3D instance segmentation of mineral particles in micro-CT scans.

commands:
{commands}

Examples:
  particleseg predict input=scan.tif particle_size_px=40
  particleseg predict -i scans/ -o results/      each scan into results/NAME/
  particleseg predict input=scans/ --dry-run
  particleseg train experiment=cpu_small
  particleseg COMMAND --help      every option of a command

Bad input stops with exit status 2 and a message naming the file; --debug shows the traceback.
"""


def usage() -> str:
    """The command's help text."""
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, (text, _) in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``particleseg COMMAND [OPTIONS]``; returns the exit status.

    Args:
        argv: the command and its options (default ``sys.argv[1:]``).
        prog: the program's name in messages (default ``particleseg COMMAND``; the root
            scripts pass their own file name).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, args = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"particleseg: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    sys.argv = [prog or f"particleseg {name}", *args]
    return COMMANDS[name][1](args)


if __name__ == "__main__":
    raise SystemExit(main())
