"""napari widget that segments a scan with particleseg: a worker thread, a progress bar, cancel.

The widget composes the same Hydra config as ``particleseg predict`` (``conf/predict.yaml``), with
the fields as overrides, so a result made here is the result the command makes (and the command
resumes it, or reports it as complete). The run goes in a napari thread worker; the network
stage reports every chunk to the progress bar and checks the cancel button between chunks.
A cancelled run stops at the next chunk and leaves its output folder as a killed run does: the
same settings resume it from the chunks already done. The CPU stages after the network run to
their end once started (the bar shows them as one step). When the run ends, the result opens
in the viewer through the plugin's reader (:mod:`particleseg.napari_plugin.reader`).

:func:`predict_steps` is the run without Qt (a generator of progress), so tests drive it
headless; :class:`PredictTool` holds the widgets and their handlers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from particleseg.entry import hydra_value

#: Label of the size field's choices; anything else is a particle diameter in voxels.
SIZE_CHOICES = ("model", "auto")


class PredictCancelled(Exception):
    """The user cancelled the run (raised in the network stage between chunks)."""


class ProgressCallback(Callback):
    """Reports each network chunk as (stage, done, total) and stops when ``cancel`` is set."""

    def __init__(self, report: Any, cancel: threading.Event) -> None:
        self.report, self.cancel = report, cancel

    def _check(self) -> None:
        if self.cancel.is_set():
            raise PredictCancelled("cancelled; run it again with the same settings to resume")

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:  # noqa: D102
        self._check()
        self.report(("network", 0, int(sum(trainer.num_predict_batches))))

    def on_predict_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:  # noqa: D102
        batch_idx = args[3] if len(args) > 3 else kwargs.get("batch_idx", 0)
        self.report(("network", int(batch_idx) + 1, int(sum(trainer.num_predict_batches))))
        self._check()

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:  # noqa: D102
        self.report(("post-processing and analysis", 0, 0))


def predict_overrides(
    image: str | Path,
    output: str | Path | None,
    size: str,
    model: str = "default",
    overwrite: bool = False,
) -> list[str]:
    """The ``particleseg predict`` overrides for the widget's fields.

    Args:
        image: the scan (any input ``particleseg predict`` reads).
        output: the output folder; None or empty: predict's default under the working folder.
        size: ``model`` (the network measures it), ``auto`` (from the image) or a particle
            diameter in voxels.
        model: a shipped model's name or a checkpoint path.
        overwrite: replace a complete result.

    Raises:
        ValueError: for a missing scan or a size that is neither a choice nor a positive number.
    """
    image = Path(image)
    if not str(image) or not image.exists():
        raise ValueError(f"{image}: scan not found; choose a scan file or folder")
    size = str(size).strip()
    overrides = [
        f"input={hydra_value(str(image))}",
        f"paths.root={hydra_value(str(Path.cwd()))}",
        f"checkpoint={hydra_value(str(model))}",
    ]
    if size in SIZE_CHOICES:
        overrides.append(f"particle_size={size}")
    else:
        try:
            value = float(size)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise ValueError(
                f"particle size: expected 'model', 'auto' or a diameter in voxels, got {size!r}"
            )
        overrides.append(f"particle_size_px={value}")
    if output not in (None, ""):
        overrides.append(f"output={hydra_value(str(Path(output)))}")
    overrides += ["trainer.enable_progress_bar=false", f"overwrite={str(bool(overwrite)).lower()}"]
    return overrides


def compose_predict(overrides: list[str]) -> Any:
    """The predict config with ``overrides``, as ``particleseg predict`` composes it."""
    from particleseg.config import compose_config

    return compose_config("predict", overrides)


def predict_steps(overrides: list[str], cancel: threading.Event) -> Iterator[tuple]:
    """Run predict in a thread; yield its progress (stage, done, total); return the output folder.

    Raises:
        PredictCancelled: when ``cancel`` was set during the network stage.
        ValueError: predict's refusals (bad input, settings), naming the file.
    """
    from particleseg.tasks.predict import predict

    cfg = compose_predict(overrides)
    output = Path(cfg.output)
    progress: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["summaries"] = predict(cfg, callbacks=[ProgressCallback(progress.put, cancel)])
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            progress.put(None)

    yield ("starting", 0, 0)
    thread = threading.Thread(target=target, name="particleseg-predict", daemon=True)
    thread.start()
    while (item := progress.get()) is not None:
        yield item
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return output


def _outcome(steps: Iterator[tuple]) -> Iterator[tuple]:
    """``steps``' progress, then ("done", output folder) or ("error", the exception) returned."""
    try:
        output = yield from steps
    except Exception as exc:  # shown in the panel (the thread worker must not re-raise it)
        return ("error", exc)
    return ("done", output)


class PredictTool:
    """The "Segment particles" panel: scan, output, size, model, Run / Cancel, progress.

    Attributes:
        viewer: the napari viewer (or a ``ViewerModel`` in tests).
        widget: the magicgui container to dock.
        output: the last run's output folder (None before a run ends).
    """

    def __init__(self, viewer: Any) -> None:
        from magicgui import widgets as w  # the [napari] extra, as napari itself

        self.viewer = viewer
        self.output: Path | None = None
        self._cancel = threading.Event()
        self._worker = None
        self.image = w.FileEdit(label="scan", mode="r")
        self.out = w.FileEdit(label="output folder", mode="d", value="")
        self.size = w.LineEdit(
            label="particle size",
            value="model",
            tooltip="model: the network measures it; auto: from the image; "
            "or a mean particle diameter in voxels",
        )
        self.model = w.LineEdit(label="model", value="default")
        self.overwrite = w.CheckBox(label="overwrite a complete result", value=False)
        self.run_button = w.PushButton(text="Run")
        self.cancel_button = w.PushButton(text="Cancel", enabled=False)
        self.progress = w.ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = w.Label(value="choose a scan, then Run")
        self.run_button.changed.connect(lambda *_: self.run())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.widget = w.Container(
            widgets=[
                self.image,
                self.out,
                self.size,
                self.model,
                self.overwrite,
                self.run_button,
                self.cancel_button,
                self.progress,
                self.status,
            ]
        )
        self.widget._particleseg_tool = self  # keeps the handlers alive with the panel

    def run(self, blocking: bool = False) -> None:
        """Start predict with the fields' settings (in a worker thread unless ``blocking``)."""
        try:
            overrides = predict_overrides(
                self.image.value,
                str(self.out.value) if str(self.out.value) not in ("", ".") else None,
                self.size.value,
                self.model.value or "default",
                bool(self.overwrite.value),
            )
        except ValueError as exc:
            self.status.value = f"error: {exc}"
            return
        self._cancel.clear()
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = "starting"
        steps = _outcome(predict_steps(overrides, self._cancel))
        if blocking:
            try:
                while True:
                    self._on_progress(next(steps))
            except StopIteration as stop:
                self._on_outcome(stop.value)
            return
        from napari.qt.threading import create_worker

        def work() -> Iterator[tuple]:
            return (yield from steps)

        # the outcome comes back as a value, never as the worker's error: napari would also
        # raise it in the main thread and notify it, and the panel already shows it
        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_outcome)
        self._worker = worker
        worker.start()

    def cancel(self) -> None:
        """Ask the run to stop at the next network chunk."""
        self._cancel.set()
        self.status.value = "cancelling at the next chunk"

    def _on_progress(self, item: tuple) -> None:
        stage, done, total = item
        if total:
            self.progress.max, self.progress.value = total, done
            self.status.value = f"{stage}: chunk {done} of {total}"
        else:
            self.status.value = stage

    def _on_outcome(self, outcome: tuple[str, Any]) -> None:
        kind, value = outcome
        try:
            if kind == "done":
                self._on_done(value)
            else:
                self._on_error(value)
        finally:
            self.run_button.enabled, self.cancel_button.enabled = True, False
            self._worker = None

    def _on_done(self, output: Path) -> None:
        from particleseg.napari_plugin.reader import read_result, result_folder

        self.output = Path(output)
        folders = [self.output] if result_folder(self.output) else []
        if not folders and self.output.is_dir():
            folders = sorted(p for p in self.output.iterdir() if result_folder(p))
        for folder in folders:
            for data, meta, kind in read_result(str(folder)):
                meta = dict(meta, name=f"{folder.name} {meta['name']}")
                getattr(self.viewer, f"add_{kind}")(data, **meta)
        self.progress.value = self.progress.max
        self.status.value = f"done: {self.output}"

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, PredictCancelled):
            self.status.value = str(exc)
        elif isinstance(exc, ValueError | OSError):
            self.status.value = f"error: {exc}"
        else:
            self.status.value = f"error: {type(exc).__name__}: {exc}"


def predict_widget(napari_viewer: Any) -> Any:
    """npe2 widget contribution: the "Segment particles" panel for ``napari_viewer``."""
    return PredictTool(napari_viewer).widget
