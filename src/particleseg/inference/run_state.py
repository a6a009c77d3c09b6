"""Where a predict run stands on disk: ranks, markers, the output folder's state, resources.

A scan's output folder holds ``summary.json`` (written last: the folder is complete) and, while
a run is unfinished, ``.work/`` with ``plan.json`` (what the result depends on) and one
``stage-NAME.done`` marker per finished stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
from pathlib import Path

from particleseg.inference.chunk_store import touch_json
from particleseg.inference.inputs import ScanInput
from particleseg.inference.model import LoadedModel
from particleseg.inference.plan import ChunkPlan
from particleseg.inference.reports import OUTPUT_FILES
from particleseg.io.identity import input_identity

SUMMARY = "summary.json"
WORK = ".work"


def is_global_zero() -> bool:
    """Whether this process is global rank 0, from the launchers' environment.

    Read from the environment because a Trainer knows its rank only once it has launched; the
    processes Lightning starts for DDP (``LOCAL_RANK`` >= 1), torchrun (``RANK``) and SLURM
    (``SLURM_PROCID``) re-run the whole command, and must not touch the output before then.
    """
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def peak_rss_bytes() -> dict[str, int]:
    """Peak resident memory of this process (``self``) and of its finished children.

    ``self`` is ``VmHWM`` from ``/proc/self/status`` where there is one (Linux): the peak of this
    program's own memory. ``ru_maxrss`` would do elsewhere, but on Linux it keeps the peak of
    the parent that forked this process before ``exec``, so a small job started by a big one
    would report the big one's peak.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) * 1024
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"self": int(own), "children": int(children)}


def current_rss_bytes() -> int:
    """Resident memory of this process now (``VmRSS``; the peak where that is unknown)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()["self"]


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path``."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fingerprint(scan: ScanInput, model: LoadedModel, plan: ChunkPlan, settings: dict) -> dict:
    """What a run's result depends on: a resumed run, and a complete result, must match it.

    The input is identified by its path, size, modification time and a hash of a bounded
    sample of its bytes (:func:`particleseg.io.identity.input_identity`), the model by the
    SHA-256 of its file (and, for ``inference.precision=int8``, of its int8 weights: quantizing
    the same model again gives other weights), the run by the resolved inference,
    normalization and post-processing settings.
    """
    facts = {
        "input": input_identity(scan.path),
        "shape": list(scan.shape),
        "particle_size_px": list(scan.particle_size_px),
        "model_sha256": file_sha256(model.path),
        "network_shape": list(plan.network_shape),
        "chunk_size": list(plan.chunk_size),
        "settings": settings,
    }
    if settings.get("inference", {}).get("precision") == "int8":
        from particleseg.inference.quantize import int8_path  # quantize imports this module

        weights = int8_path(model.path).with_suffix(".bin")
        facts["int8_sha256"] = file_sha256(weights) if weights.is_file() else None
    return json.loads(json.dumps(facts))  # as it reads back from disk (tuples become lists)


class Stages:
    """Markers of finished stages under ``work`` (each holds the stage's facts as JSON)."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def done(self, name: str) -> dict | None:
        """The facts recorded when stage ``name`` finished, or None if it has not."""
        path = self.work / f"stage-{name}.done"
        return json.loads(path.read_text()) if path.exists() else None

    def mark(self, name: str, facts: dict) -> None:
        """Record stage ``name`` as finished, with its facts (atomically)."""
        touch_json(self.work / f"stage-{name}.done", facts)


def differences(old, new, prefix: str = "") -> list[str]:
    """Dotted keys where two fingerprints differ (``settings.postprocess.halo``, ``input.size``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".") or "(all)"]


def _refuse(out: Path, what: str, changed: list[str]) -> ValueError:
    shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
    return ValueError(
        f"{out}: holds {what} made with other inputs or settings ({shown} differ); pass "
        "overwrite=true to replace it, or choose another output folder"
    )


def check_writable(out: Path) -> None:
    """Create the folder ``out`` if needed and check that files can be written into it.

    Raises:
        ValueError: naming the folder and the system's reason (permission, read-only, a file
            in the way), before any work is done.
    """
    probe = out / ".write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"{out}: cannot write the output folder ({err.strerror or err}); choose another "
            "output= folder"
        ) from err


def prepare_output(out: Path, plan_facts: dict, overwrite: bool, is_rank0: bool) -> str:
    """Decide what to do with ``out``: "complete" (skip), "resume" or "start".

    A complete result (``summary.json``) counts only if its recorded fingerprint equals
    ``plan_facts``: the same input (path, size, time, sampled bytes), model and settings.

    Raises:
        ValueError: ``out`` is a file, or holds a result or an unfinished run made from another
            input, model or settings (the message names what differs), or other files.
    """
    summary = out / SUMMARY
    work = out / WORK
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: the output must be a folder, and this is a file")
    if summary.exists() and not overwrite:
        try:
            old = json.loads(summary.read_text()).get("fingerprint")
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            raise ValueError(f"{summary}: cannot read this result's summary ({err})") from err
        if old is None:
            raise ValueError(
                f"{out}: holds a result without a fingerprint (an older particleseg made it), "
                "so it cannot be matched to this input and these settings; pass overwrite=true "
                "to replace it, or choose another output folder"
            )
        if old != plan_facts:
            raise _refuse(out, "a complete result", differences(old, plan_facts))
        return "complete"
    if is_rank0:
        check_writable(out)
    if overwrite:
        if is_rank0 and out.exists():
            # OUTPUT_FILES: the overlay and the report (inference.reports) beside the labels
            for name in (
                SUMMARY,
                WORK,
                "instances.zarr",
                "instances.tif",
                "instances.ome.zarr",
                *OUTPUT_FILES,
            ):
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            for name in ("border_core.zarr", "probabilities.zarr"):
                shutil.rmtree(out / name, ignore_errors=True)
        return "start"
    plan_path = work / "plan.json"
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old != plan_facts:
            raise ValueError(
                f"{out}: holds an unfinished run with other inputs or settings "
                f"({', '.join(differences(old, plan_facts)[:6])} differ); run the same command "
                "to resume it, or pass overwrite=true, or choose another output folder"
            )
        return "resume"
    if (out / "instances.zarr").exists():
        raise ValueError(
            f"{out}: holds instances.zarr without a summary.json; pass overwrite=true or "
            "choose another output folder"
        )
    return "start"


def check_same_engine(out: Path, work: Path, engine: dict) -> None:
    """Refuse to resume a network stage with another engine or precision than it began with.

    The fingerprint holds the configured ``inference.engine`` and ``precision``; ``auto``
    resolves by machine (OpenVINO where it is installed, bf16 where the CPU has it), so a run
    killed on one machine and resumed on another would otherwise mix two engines' chunks.

    Args:
        out: the output folder (for the message).
        work: its ``.work`` folder, where ``engine.json`` records the engine the first chunks
            were computed with.
        engine: ``{"engine": ..., "precision": ...}`` of this process.

    Raises:
        ValueError: ``engine.json`` records another engine or precision.
    """
    path = work / "engine.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    if old != engine:
        raise ValueError(
            f"{out}: holds an unfinished run whose chunks were computed with "
            f"{old.get('engine')} {old.get('precision')}, and inference.engine / precision "
            f"resolve to {engine['engine']} {engine['precision']} here; resume with "
            f"inference.engine={old.get('engine')} inference.precision={old.get('precision')} "
            "(where that engine is installed), or pass overwrite=true to start again"
        )
