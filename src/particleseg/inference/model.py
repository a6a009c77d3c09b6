"""Load a trained border-core network from a training checkpoint, without the training config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from particleseg.models.metadata import CHECKPOINT_KEY, read_model_metadata

__all__ = ["CHECKPOINT_KEY", "DEFAULT_MODEL", "LoadedModel", "load_checkpoint"]

# The shipped default model (its card: MODEL_CARD.md beside it); predict's ``checkpoint=default``.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "weights" / "default.ckpt"


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """The model file for predict's ``checkpoint=``: ``default`` (or None) is the shipped model.

    Raises:
        ValueError: ``default`` asked for, but the shipped file is not there.
    """
    if model in (None, "", "default"):
        if not DEFAULT_MODEL.is_file():
            raise ValueError(
                f"{DEFAULT_MODEL}: the shipped default model is missing from this installation; "
                "reinstall particleseg, or pass checkpoint=FILE"
            )
        return DEFAULT_MODEL
    return Path(model)


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode and what inference needs to feed it.

    Attributes:
        net: The network (eval mode, on the CPU).
        normalization: The intensity normalization scheme the network was trained with (a
            config of :func:`particleseg.transforms.normalization.resolve_config`; a model that
            stored only ``intensity_stats`` gets ``global_zscore`` with them).
        target_particle_size: Mean particle diameter in voxels the network expects.
        border_thickness: Border width in voxels of that space.
        patch_size: Sliding-window size (z, y, x).
        path: The checkpoint file.
        postprocess: Post-processing thresholds tuned for this model (stored by
            :func:`particleseg.inference.export.export_model`); empty when not tuned.
        input_reference: Histograms of the model's normalized reference scans
            (:func:`particleseg.transforms.input_reference.build_reference`), for predict's
            warning on unfamiliar scans; empty when the model stores none.
        size_band: (low, high) particle diameters on the network grid (voxels) over which the
            model was validated (:mod:`particleseg.inference.size_band`); None: resize every
            scan to ``target_particle_size``.
    """

    net: nn.Module
    normalization: dict[str, Any]
    target_particle_size: float
    border_thickness: int
    patch_size: tuple[int, int, int]
    path: Path
    postprocess: dict[str, Any] = field(default_factory=dict)
    input_reference: dict[str, Any] = field(default_factory=dict)
    size_band: tuple[float, float] | None = None


def load_checkpoint(path: str | os.PathLike) -> LoadedModel:
    """Rebuild the network stored in a checkpoint written by ``train.py``.

    The file is loaded with ``weights_only=True`` (no code runs from it); the network is rebuilt
    from the config stored beside the weights.

    Raises:
        ValueError: If the file is missing, unreadable, or lacks the particleseg metadata (not a
            checkpoint written by train.py).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model checkpoint not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip (old files: a pickle)
        raise ValueError(
            f"{path}: not a PyTorch model file (a checkpoint from train.py, or a model file "
            "from python -m particleseg.inference.export); its first bytes are "
            f"{head!r}"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any load failure is an unreadable checkpoint
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path}: cannot read the model file ({reason})") from err
    meta = read_model_metadata(ckpt, str(path))
    net = instantiate(meta.net_config)
    state = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    net.eval()
    return LoadedModel(
        net=net,
        normalization=meta.normalization,
        target_particle_size=meta.target_particle_size,
        border_thickness=meta.border_thickness,
        patch_size=meta.patch_size,
        path=path,
        postprocess=meta.postprocess,
        input_reference=meta.input_reference,
        size_band=meta.size_band,
    )
