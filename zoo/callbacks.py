"""The callbacks of a training run: the atomic best-epoch checkpoint, NaN
detection, the data order of a resumed run and Keras' BackupAndRestore
(resumable runs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras

from zoo import distributed
from zoo.errors import InputError
from zoo.io import save_model, write_json


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves the model when `monitor` improves, atomically, and remembers the
    best value across resumed runs (in a JSON file beside the model)."""

    def __init__(self, path, monitor="val_accuracy"):
        super().__init__()
        self.path = Path(path)
        self.meta = self.path.with_suffix(".json")
        self.monitor = monitor
        self.best = -math.inf
        if self.meta.is_file() and self.path.is_file():
            try:
                self.best = float(json.loads(self.meta.read_text())["value"])
            except (ValueError, KeyError, TypeError):
                # Starting from -inf would let a worse epoch replace best.keras.
                raise InputError(
                    f"{self.meta} is damaged, so the score of {self.path.name} is "
                    f"unknown and resuming could replace it with a worse epoch. "
                    f"Repair it ({{\"value\": <{monitor}>}}), delete both files to "
                    "keep only later epochs, or pass --overwrite.") from None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or math.isnan(value) or value <= self.best:
            return
        self.best = float(value)
        with distributed.local_only():
            save_model(self.model, self.path)
        write_json(self.meta, {"epoch": epoch + 1, "monitor": self.monitor,
                               "value": self.best})


class NaNLoss(Exception):
    """Raised by NaNGuard; `train` turns it into a TrainingError."""

    def __init__(self, epoch):
        super().__init__(f"loss became NaN in epoch {epoch}")
        self.epoch = epoch


class ResumeDataOrder(keras.callbacks.Callback):
    """Points the training stream at the first pass over the data of the
    epoch a run starts (or resumes) at, so that a resumed run sees the
    batches an uninterrupted one would (see zoo.input_pipeline.training_stream)."""

    def __init__(self, train_pass, passes_per_epoch):
        super().__init__()
        self.train_pass, self.passes_per_epoch = train_pass, passes_per_epoch
        self.started = False

    def on_train_begin(self, logs=None):
        self.started = False

    def on_epoch_begin(self, epoch, logs=None):
        # Once: later epochs take the following passes by themselves.
        if not self.started and self.train_pass is not None:
            self.train_pass.assign(epoch * self.passes_per_epoch)
            self.started = True


def diverged(model, logs) -> bool:
    """Whether an epoch's loss, or any weight of the model, is NaN or
    infinite. The weights are checked too: under the JAX backend Keras'
    cross-entropy of NaN predictions comes out finite (about 14.5), so a
    diverged run can report a finite loss."""
    import numpy as np
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
        return True
    with distributed.local_only():
        return not all(np.isfinite(w).all() for w in model.get_weights())


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the end of an epoch whose loss or weights are NaN
    or infinite (see `diverged`).

    A NaN in any batch makes the epoch's mean loss NaN (or the weights
    NaN), so nothing is missed. It is placed first and raises, so the
    callbacks after it (the resume backup, the CSV log, the best-model
    checkpoint) never record the broken epoch: rerunning resumes from the
    last good one.
    """

    def on_epoch_end(self, epoch, logs=None):
        if diverged(self.model, logs):
            raise NaNLoss(epoch + 1)


def default_callbacks(out, monitor="val_accuracy"):
    """The callbacks `train` installs: NaN guard, resume state, CSV log and
    best-model checkpoint (in this order)."""
    out = Path(out)
    return [
        NaNGuard(),
        Backup(str(out / "backup"), double_checkpoint=True, delete_checkpoint=False),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
        AtomicBestCheckpoint(out / "best.keras", monitor=monitor),
    ]


class Backup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore; in a multi-process run process 0 writes it
    outside the distribution (see zoo.distributed.local_only)."""

    # Overrides a private method of Keras' BackupAndRestore (checked on
    # Keras 3.15.1, tests/test_private_apis.py): the one that writes.
    def _save_model(self):
        with distributed.local_only():
            super()._save_model()


class RestoreOnly(Backup):
    """The backup of processes other than 0 of a multi-process run: they
    resume from process 0's backup and never write it."""

    def _save_model(self):
        """Process 0 writes the backup; this process only reads it."""
