"""The network's forward call: PyTorch, or OpenVINO's CPU runtime, in fp32, bf16 or int8.

Only the forward call of a window changes with the engine; the chunk plan, the window weights and
the sums stay exactly as they are (:class:`particleseg.inference.windows.WindowSums` calls
:attr:`Engine.forward` like the network itself).

- ``engine=auto`` takes OpenVINO on a CPU when it is installed, PyTorch on a GPU (and on a CPU
  without OpenVINO).
- ``precision=auto`` is bf16 where the device computes bf16 natively (CPUs with AVX-512 BF16 or
  AMX, CUDA GPUs with bf16) and fp32 elsewhere: emulated bf16 is slower than fp32.
- ``precision=int8`` runs the model's int8 file (``MODEL.int8.xml``, made by
  :mod:`particleseg.inference.quantize`) with OpenVINO; never chosen by ``auto``.

OpenVINO's model is converted from the network once per model file and window
(``openvino.convert_model``, ~10 s) and cached as IR under ``cache_dir`` (default
``$XDG_CACHE_HOME/particleseg/openvino``, else ``~/.cache/...``), keyed by the model file's
SHA-256, the window and the OpenVINO version; compiling it for a precision takes a fraction of a
second. Measured on this project's CPU, one 64^3 window of the shipped U-Net on 2 threads:
torch fp32 0.170 s, torch bf16 autocast 0.057 s, OpenVINO f32 0.073 s, OpenVINO bf16 0.038 s
(``../shared/MEASURED.md``).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from particleseg.config import user_cache_dir
from particleseg.precision import cpu_has_bf16

ENGINES = ("auto", "torch", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """A resolved engine: its name, precision and forward call.

    Attributes:
        name: ``torch`` or ``openvino``.
        precision: ``fp32``, ``bf16`` or ``int8``.
        forward: (B, 1, z, y, x) float32 tensor -> (B, K, z, y, x) logits, on the input's device.
        autocast: whether the caller should run ``forward`` under bf16 autocast (torch only).
    """

    name: str
    precision: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    autocast: bool

    def describe(self) -> dict[str, str]:
        """``{"engine": ..., "precision": ...}`` for summary.json."""
        return {"engine": self.name, "precision": self.precision}


def openvino_available() -> bool:
    """Whether OpenVINO's Python runtime can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def check_names(engine: str, precision: str) -> None:
    """Refuse an engine or precision that is not one of :data:`ENGINES` / :data:`PRECISIONS`."""
    if engine not in ENGINES:
        raise ValueError(f"inference.engine must be one of {ENGINES}, got {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"inference.precision must be one of {PRECISIONS}, got {precision!r}")


def choose(engine: str, precision: str, device: torch.device) -> tuple[str, str]:
    """Resolve ``auto`` settings for ``device``; refuse unknown or impossible ones.

    Raises:
        ValueError: an unknown engine or precision, OpenVINO asked for on a GPU or not
            installed.
    """
    check_names(engine, precision)
    if engine == "openvino" and device.type != "cpu":
        raise ValueError(
            f"inference.engine=openvino runs on the CPU, but the network is on {device}; "
            "use inference.engine=torch (or auto) on a GPU"
        )
    if engine == "openvino" and not openvino_available():
        raise ValueError(
            "inference.engine=openvino, but OpenVINO is not installed: pip install openvino "
            "(or inference.engine=auto, which falls back to torch)"
        )
    if precision == "int8" and (engine == "torch" or device.type != "cpu"):
        raise ValueError(
            "inference.precision=int8 runs with OpenVINO on the CPU (engine openvino or auto); "
            f"got engine={engine} on {device}"
        )
    if engine == "auto":
        engine = "openvino" if device.type == "cpu" and openvino_available() else "torch"
    if precision == "int8" and engine != "openvino":
        raise ValueError("inference.precision=int8 needs OpenVINO: pip install openvino")
    if precision not in ("auto", "bf16"):
        return engine, precision
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    if precision == "auto":
        precision = "bf16" if native else "fp32"
    elif precision == "bf16" and not native and engine == "openvino":
        # OpenVINO takes its bf16 hint as a hint: without bf16 units it computes in f32, and the
        # summary must say what ran
        log.warning("inference.precision=bf16: this CPU has no bf16 units; OpenVINO runs f32")
        precision = "fp32"
    elif precision == "bf16" and not native:
        log.warning(
            "inference.precision=bf16 on %s without native bf16: emulated, far slower than "
            "fp32 (inference.precision=auto takes fp32 here)",
            device,
        )
    return engine, precision


def openvino_ir(net: torch.nn.Module, model_path: Path, patch, cache_dir: Path) -> Path:
    """The network's OpenVINO IR for one window, converted once and cached; returns its .xml."""
    import openvino as ov

    from particleseg.inference.run_state import file_sha256

    version = ov.__version__.split("-")[0]  # e.g. 2026.4.1 of "2026.4.1-22982-...-releases/..."
    key = f"{file_sha256(model_path)[:20]}-{'x'.join(map(str, patch))}-ov{version}"
    xml = Path(cache_dir) / "openvino" / f"{key}.xml"
    if xml.exists() and xml.with_suffix(".bin").exists():
        return xml
    xml.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros((1, 1, *patch), dtype=torch.float32)
    was_training = net.training
    net.eval()
    with warnings.catch_warnings():  # tracing's notes on the U-Net's shape checks: not the user's
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        converted = ov.convert_model(net, example_input=example)
    net.train(was_training)
    part = xml.with_name(f"{xml.stem}.{os.getpid()}.part.xml")  # two processes may convert
    ov.save_model(converted, str(part), compress_to_fp16=False)
    os.replace(part.with_suffix(".bin"), xml.with_suffix(".bin"))
    os.replace(part, xml)
    return xml


# compiled IRs of this process by (IR file, precision, threads): predict's cost check and its
# network stage run the same one, and compiling takes 0.3-0.6 s
_COMPILED: dict[tuple[str, str, int], Callable[[torch.Tensor], torch.Tensor]] = {}


def _compiled_ir(xml: Path, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`_openvino_forward` of an IR file, compiled once per process and setting."""
    key = (str(xml), precision, torch.get_num_threads())
    if key not in _COMPILED:
        _COMPILED[key] = _openvino_forward(xml, precision)
    return _COMPILED[key]


def _openvino_forward(net, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net``: an IR's path or an ``openvino.Model``; int8 keeps its float parts in f32."""
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
    }
    net = str(net) if isinstance(net, Path) else net
    request = ov.Core().compile_model(net, "CPU", config).create_infer_request()

    def forward(batch: torch.Tensor) -> torch.Tensor:
        x = batch.detach().to("cpu", torch.float32).numpy()
        out = [np.array(request.infer({0: x[i : i + 1]})[0]) for i in range(len(x))]
        return torch.from_numpy(np.concatenate(out))

    return forward


def make_engine(model, inference: dict, device: torch.device | None = None) -> Engine:
    """The engine predict's ``inference`` settings ask for, for ``model`` (a LoadedModel).

    Args:
        model: the loaded model (its ``net``, ``path`` and ``patch_size``).
        inference: ``engine`` (auto|torch|openvino), ``precision`` (auto|fp32|bf16|int8) and
            ``cache_dir`` (null: :func:`particleseg.config.user_cache_dir`).
        device: where the forward passes run (predict: the trainer's root device); default a
            GPU when there is one, as ``accelerator=auto`` takes it, else the network's device.
    """
    if device is None:
        param = next(model.net.parameters(), None)  # a stand-in network may have none
        on = param.device if param is not None else torch.device("cpu")
        device = torch.device("cuda") if torch.cuda.is_available() else on
    from particleseg.inference.settings import resolve_inference

    inference = resolve_inference(inference)
    name, precision = choose(str(inference["engine"]), str(inference["precision"]), device)
    if name == "torch":
        return Engine("torch", precision, model.net, autocast=precision == "bf16")
    if precision == "int8":
        from particleseg.inference.quantize import load_int8_ir

        net = load_int8_ir(model.path, model.patch_size)
        return Engine("openvino", precision, _openvino_forward(net, precision), autocast=False)
    cache = inference["cache_dir"] or user_cache_dir()
    xml = openvino_ir(model.net, Path(model.path), model.patch_size, Path(cache))
    return Engine("openvino", precision, _compiled_ir(xml, precision), autocast=False)
