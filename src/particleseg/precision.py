"""Whether a device computes bfloat16 natively, and the training precision that follows.

bf16 autocast is about 3x faster than fp32 on a CPU with AVX-512 BF16 or AMX
(``../shared/MEASURED.md``), and far slower than fp32 on a CPU without them, where every bf16
operation is emulated: on an AVX2-only AMD EPYC (2026-12-07), one cpu_small training step (batch
2, 64^3) took 3.0 s in fp32 while three steps under bf16 autocast did not finish in 9 minutes.
So ``auto`` takes bf16 only where the hardware has it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX on x86).

    Read once per process: validation asks for every crop.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))


def bf16_native(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 natively (a CUDA GPU that supports it, or such a CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_bf16()
    return False


def training_device(accelerator: str) -> torch.device:
    """The device Lightning's ``accelerator`` trains on (``auto``: a GPU when there is one)."""
    accelerator = str(accelerator).lower()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if accelerator in ("auto", "cpu"):
        return torch.device("cpu")
    try:
        return torch.device(accelerator)  # mps, xpu, ...
    except RuntimeError:  # an accelerator torch has no device name for (tpu, ...)
        return torch.device("meta")  # which bf16_native does not take for bf16


def resolve_training_precision(precision: str | int, accelerator: str) -> str:
    """Lightning's precision for ``trainer.precision`` (other values than ``auto`` unchanged).

    ``auto`` becomes ``bf16-mixed`` where the training device computes bf16 natively, else
    ``32-true``.
    """
    if str(precision) != "auto":
        return str(precision)
    return "bf16-mixed" if bf16_native(training_device(accelerator)) else "32-true"
