"""The network stage as a Lightning ``Trainer.predict``: one chunk per step, any strategy.

``ChunkDataset`` yields the chunks still to compute (its image region on the network grid,
normalized); ``ChunkPredictor.predict_step`` runs their windows; ``ChunkWriter`` (a
``BasePredictionWriter``) hands the sums to the :class:`ChunkStore`, which writes the chunk's
own region. Under DDP (``trainer.devices=N``, or several nodes through Lightning's launchers)
each process takes every N-th chunk; the chunk files need no lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from particleseg.inference.chunk_store import ChunkStore, touch_json
from particleseg.inference.plan import ChunkPlan
from particleseg.inference.windows import WindowSums
from particleseg.io import release_pages
from particleseg.transforms.normalization import Normalization
from particleseg.transforms.resize import resize_image_region

N_CLASSES = 3  # background, core, border


def chunk_image(scan: Any, plan: ChunkPlan, c: int, normalize: Normalization) -> np.ndarray:
    """The normalized network-grid image over chunk ``c``'s extent (zero in the padding).

    Args:
        scan: (Z, Y, X) scan at its own grid (numpy, memmap, zarr); only the box the region
            needs is read.
        plan: the chunk plan (its ``network_shape`` is the resized scan's shape).
        c: chunk number.
        normalize: the scan's intensity normalization (fitted once per scan, before any chunk).

    Returns:
        float32 array of the extent's shape.
    """
    start, stop = plan.extent(c)
    out = np.zeros([b - a for a, b in zip(start, stop, strict=True)], np.float32)
    lo, hi = plan.unpadded(start, stop)
    if all(b > a for a, b in zip(lo, hi, strict=True)):
        region = normalize(resize_image_region(scan, plan.network_shape, lo, hi))
        at = tuple(
            slice(a + p - s, b + p - s) for a, b, p, s in zip(lo, hi, plan.pad, start, strict=True)
        )
        out[at] = region
    return out


def quiet_trainer():
    """A one-device Lightning ``Trainer`` (a GPU when there is one), quiet.

    No logs, checkpoints, summary or progress bar: the network stage of the tools that predict
    many scans in turn (threshold tuning, the size band).
    """
    from lightning import Trainer

    return Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )


def first(items: list) -> Any:
    """Collate for batches of one chunk: the chunk itself."""
    return items[0]


class ChunkDataset(Dataset):
    """The chunks to compute, each as ``{"chunk", "image", "starts"}``.

    Args:
        open_scan: callable returning the scan array (called lazily in each process or
            worker, so that the dataset pickles without the data).
        plan: the chunk plan.
        chunks: chunk numbers to yield.
        normalize: the scan's intensity normalization.
    """

    def __init__(
        self, open_scan, plan: ChunkPlan, chunks: Sequence[int], normalize: Normalization
    ) -> None:
        self.open_scan = open_scan
        self.plan = plan
        self.chunks = list(chunks)
        self.normalize = normalize
        self._scan = None

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict:
        if self._scan is None:
            self._scan = self.open_scan()
        c = self.chunks[i]
        start, _ = self.plan.extent(c)
        starts = self.plan.windows(c) - np.asarray(start)
        image = chunk_image(self._scan, self.plan, c, self.normalize)
        release_pages(self._scan)
        return {"chunk": c, "image": torch.from_numpy(image), "starts": starts}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_scan"] = None
        return state


class ChunkPredictor(LightningModule):
    """Runs a chunk's windows with ``sums`` (a :class:`WindowSums`; its net is this module's)."""

    def __init__(self, sums: WindowSums) -> None:
        super().__init__()
        self.net = sums.net  # registered, so Lightning moves it to the device
        self.sums = sums

    def predict_step(self, batch: dict, batch_idx: int = 0) -> dict:
        """Sums of one chunk: ``{"chunk", "sums" (K, *extent) float32, "info"}``."""
        image = batch["image"].to(self.device, torch.float32)
        starts = np.asarray(batch["starts"]).reshape(-1, 3)
        before = self.sums.forward_passes
        t0 = time.perf_counter()
        if len(starts):
            sums = self.sums(image, starts)
        else:
            sums = torch.zeros((N_CLASSES, *image.shape), dtype=torch.float32)
        sums = sums.cpu().numpy()
        seconds = time.perf_counter() - t0
        info = {"forward_passes": self.sums.forward_passes - before, "forward_s": seconds}
        return {"chunk": int(batch["chunk"]), "sums": sums, "info": info}


class ChunkWriter(BasePredictionWriter):
    """Writes each chunk's result through the data module's :class:`ChunkStore`.

    After the last chunk of every rank (a barrier), global rank 0 finalizes the chunks that
    waited for a neighbour computed by another rank, and marks the network stage done.
    """

    def __init__(self, datamodule: ChunkDataModule, done_marker: Path) -> None:
        super().__init__(write_interval="batch")
        self.datamodule = datamodule
        self.done_marker = Path(done_marker)

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        """Hand the chunk's sums to the store (writes its pieces, finalizes it if it can)."""
        self.datamodule.store.save(prediction["chunk"], prediction["sums"], prediction["info"])

    def on_predict_end(self, trainer, pl_module) -> None:
        """Wait for every rank, then finalize the chunks still pending (rank 0)."""
        trainer.strategy.barrier("particleseg-chunks")
        if trainer.global_rank == 0:
            self.datamodule.store.finalize_pending()
            facts = self.datamodule.store.stats()
            facts["chunks_computed_last_run"] = len(self.datamodule.todo())
            touch_json(self.done_marker, facts)
        trainer.strategy.barrier("particleseg-chunks-final")


class ChunkDataModule(LightningDataModule):
    """Sets up the network stage's files once (global rank 0) and serves the chunks to compute.

    ``prepare_data`` (global rank 0 only, before the other ranks read anything) creates the
    :class:`ChunkStore` and writes the list of chunks still to compute; ``setup`` (every rank)
    opens the store and reads that list, so all ranks shard the same list whatever they find on
    disk later.

    Args:
        root: work folder of the chunk store.
        open_scan: callable returning the scan array.
        plan: the chunk plan.
        normalize: the scan's intensity normalization.
        save_probabilities: also keep the probabilities.
        num_workers: DataLoader workers reading and resizing chunks (spawned).
    """

    def __init__(
        self,
        root,
        open_scan,
        plan: ChunkPlan,
        normalize: Normalization,
        save_probabilities: bool = False,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.prepare_data_per_node = False
        self.root = Path(root)
        self.open_scan = open_scan
        self.plan = plan
        self.normalize = normalize
        self.save_probabilities = save_probabilities
        self.num_workers = int(num_workers)
        self.store: ChunkStore | None = None

    def _open(self) -> ChunkStore:
        return ChunkStore(self.root, self.plan, N_CLASSES, self.save_probabilities)

    def prepare_data(self) -> None:
        """Create the store and record the chunks to compute (global rank 0 only)."""
        store = self._open()
        (self.root / "todo.json").write_text(json.dumps(store.to_compute()))

    def setup(self, stage: str) -> None:
        """Open the store (every rank)."""
        self.store = self._open()

    def todo(self) -> list[int]:
        """The chunks this run computes (recorded by :meth:`prepare_data`)."""
        return json.loads((self.root / "todo.json").read_text())

    def predict_dataloader(self) -> DataLoader:
        """One chunk per batch, the list recorded by :meth:`prepare_data`."""
        dataset = ChunkDataset(self.open_scan, self.plan, self.todo(), self.normalize)
        return DataLoader(
            dataset,
            batch_size=1,
            collate_fn=first,
            num_workers=self.num_workers,
            multiprocessing_context="spawn" if self.num_workers else None,
            persistent_workers=False,
        )
