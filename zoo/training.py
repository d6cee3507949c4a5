"""Training a zoo model from a config: optimizers, schedules, callbacks,
precision, distribution, resumable runs and atomic outputs.

`train(TrainConfig(...), out="runs/x")` writes into `out`:

* ``model.keras``   – the best epoch's model (by validation accuracy),
* ``history.csv``   – one row per epoch,
* ``metrics.json``  – test accuracy/loss, params, epochs, wall time, config,
* ``curves.png``    – loss and accuracy curves,
* ``config.json``   – the configuration, to repeat the run.

Killing the process and running the same command again resumes from the
last finished epoch (Keras' BackupAndRestore keeps model and optimizer state
in ``out/backup``); every output is written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras

from zoo import data as data_lib
from zoo import distributed
from zoo import factory, heads, registry, transfer
from zoo.io import atomic_path, check_writable_dir, save_model, write_json, write_text
from zoo.budget import (DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, MIN_EPOCH_STEPS,  # noqa: F401
                        budget)
from zoo.optim import (DEFAULT_LR, FINE_TUNE_LR, OPTIMIZER_KNOBS, OPTIMIZERS,  # noqa: F401
                       SCHEDULES, build_for_fit, check_optimizer, make_optimizer,
                       make_schedule)
from zoo.errors import InputError, ZooError, check_positive_int
from zoo.recipe import RECIPE, SELECTIONS

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = (None, "mirrored")
class TrainingError(ZooError, RuntimeError):
    """Training ran but could not produce a usable model."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as config.json).

    Attributes:
        model: registry name.
        dataset: data source (see zoo.data.load).
        optimizer: sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw.
        epochs: None (default): DEFAULT_EPOCHS epochs, or more on a small
            dataset so that the run has at least `min_steps` optimizer steps
            (see `budget`); an explicit number is honoured.
        min_steps: the floor on optimizer steps when `epochs` is None.
        lr: peak learning rate; default per optimizer (0.1 for SGD family,
            0.01 Adagrad, 1e-3 otherwise).
        schedule: constant | step (×0.1 at 50 % and 75 %) | cosine |
            warmup_cosine (default: linear warm-up, then cosine decay to 0).
        warmup_epochs: warmup_cosine's warm-up; None: one epoch, at most a
            tenth of the run; a number is honoured (fewer than the epochs).
        momentum, rho, beta_1, beta_2, epsilon: the optimizer's own knobs
            (None: Keras' defaults, momentum 0.9); one the optimizer does not
            have is refused, not ignored.
        weight_decay: decoupled weight decay of the Keras optimizer.
        label_smoothing: for the cross-entropy loss.
        regularizer, dropout, drop_path, width_multiplier (MobileNets):
            passed to create_model.
        precision: float32 | mixed_bfloat16 (CPUs with bf16 units) |
            mixed_float16 (GPUs).
        jit_compile: XLA compilation of the train step.
        strategy: None or "mirrored" (all local GPUs, else all local CPUs).
        patience: early-stopping patience in epochs (None: off).
        augment: augmentation preset; None: the recipe's (zoo.recipe: its
            `augment`, or `fine_tune_augment` with fine_tune).
        selection: "best" (the epoch that scored best on validation) or
            "last" (the final weights); None: the recipe's rule, "best"
            only with at least RECIPE.min_val_for_best validation images.
        fine_tune: LP-FT from `weights` (zoo.transfer.fine_tune): new head
            unless `keep_head`, linear probe, then every layer trained,
            the backbone at `backbone_lr_factor` × lr, BatchNormalization
            per `bn` ("auto" | "train" | "freeze").
    """

    model: str
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int | None = None
    min_steps: int = RECIPE.min_steps
    batch_size: int = RECIPE.batch_size
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    rho: float | None = None
    beta_1: float | None = None
    beta_2: float | None = None
    epsilon: float | None = None
    schedule: str = "warmup_cosine"
    warmup_epochs: int | None = None
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    regularizer: str | None = None
    dropout: float | None = None
    drop_path: float = 0.0
    width_multiplier: float | None = None
    augment: str | None = None
    selection: str | None = None
    weights: str | None = None
    fine_tune: bool = False
    keep_head: bool = False
    bn: str = "auto"
    backbone_lr_factor: float = 1.0
    image_size: int | None = None
    channels: int | None = None
    num_classes: int | None = None
    validation_split: float = 0.1
    preprocessing: str = "unit"
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str | None = None
    seed: int = 0
    patience: int | None = None
    tensorboard: bool = False
    limit: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def augmentation(self) -> str:
        """The preset this run uses (`augment`, else the recipe's)."""
        if self.augment is not None:
            return self.augment
        return RECIPE.fine_tune_augment if self.fine_tune else RECIPE.augment

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.fine_tune and self.optimizer in FINE_TUNE_LR:
            return FINE_TUNE_LR[self.optimizer]
        return DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputError(f"Unknown config key(s): {', '.join(unknown)}.")
        return cls(**d)

    def _check_knobs_apply(self):
        """An optimizer knob the chosen optimizer does not have is refused
        (docs/errors.md: an option without effect is not ignored)."""
        if self.epsilon is not None and (isinstance(self.epsilon, bool) or not isinstance(
                self.epsilon, (int, float)) or not self.epsilon > 0):
            raise InputError(f"epsilon must be a number > 0; got {self.epsilon!r}.")
        for knob, users in OPTIMIZER_KNOBS.items():
            if getattr(self, knob) is not None and self.optimizer not in users:
                raise InputError(
                    f"{knob} has no effect with the {self.optimizer} optimizer (it is a "
                    f"knob of {', '.join(users)}); drop it or choose one of those.")

    def _check_warmup(self):
        """warmup_epochs: None (one epoch, at most a tenth of the run), or an
        explicit number that the warmup_cosine schedule honours."""
        w = self.warmup_epochs
        if w is None:
            return
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise InputError(f"warmup_epochs must be an integer >= 0; got {w!r}.")
        if self.schedule != "warmup_cosine":
            raise InputError(f"warmup_epochs has no effect with the {self.schedule} "
                             "schedule; use --schedule warmup_cosine or drop it.")
        if self.epochs is not None and w >= self.epochs:
            raise InputError(f"warmup_epochs ({w}) must be fewer than the run's "
                             f"epochs ({self.epochs}).")

    def _check_selection(self):
        if self.selection not in (None, *SELECTIONS):
            raise InputError(f"selection must be one of {', '.join(SELECTIONS)} (or "
                             f"None: the recipe's rule); got {self.selection!r}.")
        if self.selection == "best" and not self.validation_split:
            raise InputError("selection 'best' has no effect without a validation "
                             "split (validation_split 0): there is no validation "
                             "score to choose an epoch by.")

    def validate(self) -> "TrainConfig":
        """Checks every field; raises ValueError naming the bad one."""
        registry.get_entry(self.model)
        data_lib.check_source(self.dataset, self.data_dir)
        check_optimizer(self.optimizer)
        if self.schedule not in SCHEDULES:
            raise InputError(f"Unknown schedule {self.schedule!r}; use one of "
                             f"{', '.join(SCHEDULES)}.")
        if self.epochs is not None:
            check_positive_int(self.epochs, "epochs")
        check_positive_int(self.min_steps, "min_steps")
        check_positive_int(self.batch_size, "batch_size")
        self._check_selection()
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) \
                or not lr > 0 or math.isinf(lr):
            raise InputError(f"Learning rate must be > 0; got {lr!r}.")
        for name in ("momentum", "rho", "beta_1", "beta_2", "label_smoothing"):
            v = getattr(self, name)
            if v is None and name != "label_smoothing":
                continue
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise InputError(f"{name} must be in [0, 1); got {v!r}.")
        self._check_knobs_apply()
        if not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise InputError(f"weight_decay must be >= 0; got {self.weight_decay!r}.")
        if self.precision not in PRECISIONS:
            raise InputError(f"Unknown precision {self.precision!r}; use one of "
                             f"{', '.join(PRECISIONS)}.")
        backend = keras.backend.backend()
        if backend != "tensorflow" and self.strategy:
            raise InputError(f"--strategy {self.strategy} is tf.distribute, TensorFlow "
                             f"only; this process runs Keras on {backend}. For "
                             "data-parallel training on JAX use --processes N "
                             "(docs/distributed.md).")
        if backend != "tensorflow" and self.jit_compile:
            raise InputError("--jit turns on XLA for TensorFlow's train step; the "
                             f"{backend} backend compiles on its own (leave --jit out).")
        if self.strategy not in STRATEGIES:
            raise InputError(f"Unknown strategy {self.strategy!r}; use 'mirrored' "
                             "or None. (Keras 3 fit does not run under "
                             "MultiWorkerMirroredStrategy, keras#20585.)")
        if self.patience is not None:
            check_positive_int(self.patience, "patience")
        self._check_warmup()
        if self.limit is not None:
            check_positive_int(self.limit, "limit")
        if self.fine_tune and not self.weights:
            raise InputError("fine_tune needs pretrained weights (--weights TAG|PATH).")
        if self.keep_head and not self.fine_tune:
            raise InputError("keep_head applies to fine-tuning; add --fine-tune.")

        if self.bn not in transfer.BN_POLICIES:
            raise InputError(f"Unknown bn policy {self.bn!r}; use one of "
                             f"{', '.join(transfer.BN_POLICIES)}.")
        f = self.backbone_lr_factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise InputError(f"backbone_lr_factor must be in (0, 1]; got {f!r}.")
        factory.parse_regularizer(self.regularizer)
        return self



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
    batches an uninterrupted one would (see zoo.data._training_stream)."""

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


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fast_path(model_name: str):
    """(precision, jit_compile) of the fastest measured training setup for
    `model_name` on this machine (docs/benchmarks.md):

    * GPU: mixed_float16.
    * CPU with bf16 instructions (AVX512-BF16 or AMX): mixed_bfloat16, except
      for MobileNets, whose depthwise convolutions run slower in bf16
      (0.85× measured), which stay float32.
    * other CPUs: float32.
    XLA is never switched on: it made CPU training slower in every
    measurement.
    """
    import tensorflow as tf
    family = registry.get_entry(model_name).family
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16", False
    if not _cpu_has_bf16() or family == "mobilenet":
        return "float32", False
    return "mixed_bfloat16", False


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


def _strategy(name):
    if name is None:
        return None
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)


def _history_rows(log_path: Path) -> list[dict]:
    if not log_path.is_file():
        return []
    rows = {}
    with open(log_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch", "").isdigit():
                rows[int(row["epoch"])] = row   # a resumed epoch replaces the old row
    rows = [rows[k] for k in sorted(rows)]
    # Keras' CSVLogger writes "NA" for a metric an epoch did not produce
    # (validation metrics of a run without a validation split).
    empty = {k for k in (rows[0] if rows else {})
             if all(r.get(k) in (None, "", "NA") for r in rows)}
    return [{k: v for k, v in r.items() if k not in empty} for r in rows]


def _write_history(rows, path):
    if not rows:
        return
    buf = io.StringIO()
    fields = list(rows[0].keys())
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        row = dict(row)
        row["epoch"] = int(row["epoch"]) + 1     # 1-based in the user's file
        writer.writerow(row)
    write_text(path, buf.getvalue())


def plot_curves(rows, path):
    """loss and accuracy (train and validation) per epoch as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            key = prefix + metric
            values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
            if len(values) == len(epochs):
                ax.plot(epochs, values, style, marker="o", ms=3,
                        label="validation" if prefix else "train")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("extra",)}


def _prepare_out(out: Path, config: TrainConfig, overwrite: bool):
    check_writable_dir(out)
    metrics = out / "metrics.json"
    saved = out / "config.json"
    if metrics.exists() and not overwrite:
        raise InputError(f"{out} already holds a finished run (metrics.json); "
                         "choose another --out or pass --overwrite.")
    if saved.exists() and not metrics.exists() and not overwrite:
        try:
            previous = json.loads(saved.read_text())
            if not isinstance(previous, dict):
                raise ValueError(type(previous).__name__)
        except ValueError:
            raise InputError(f"{saved} is damaged, so the unfinished run in {out} "
                             "cannot be checked against this configuration and is "
                             "not resumed. Pass --overwrite to start again, or "
                             "choose another --out.") from None
        if _comparable(previous) != _comparable(config.to_dict()):
            changed = sorted(k for k in _comparable(config.to_dict())
                             if previous.get(k) != config.to_dict().get(k))
            raise InputError(f"{out} holds an unfinished run with a different "
                             f"configuration ({', '.join(changed)}); rerun the "
                             "same command to resume, or choose another --out.")
    if overwrite:
        import shutil
        for name in ("backup", "best.keras", "best.json", "log.csv", "metrics.json"):
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()


def build_model_for(config: TrainConfig, info):
    """The zoo model the config asks for, sized for the dataset."""
    from zoo import weights as weights_lib
    entry = registry.get_entry(config.model)
    num_classes = config.num_classes or info.num_classes
    if num_classes < info.num_classes:
        raise InputError(f"num_classes={num_classes} but {info.name} has labels "
                         f"0..{info.num_classes - 1}; use at least "
                         f"{info.num_classes} classes.")
    h, w, _ = info.image_shape
    if min(h, w) < entry.min_size:
        raise InputError(f"{info.name} images are {h}×{w}, smaller than "
                         f"{entry.name}'s minimum {entry.min_size}×{entry.min_size}; "
                         f"pass --image-size {max(entry.min_size, 32)}.")
    extra = {} if config.width_multiplier is None else {
        "width_multiplier": config.width_multiplier}
    return weights_lib.create_with_weights(
        config.model, weights=config.weights, num_classes=num_classes,
        input_shape=info.image_shape, regularizer=config.regularizer,
        dropout_rate=config.dropout, drop_path_rate=config.drop_path, **extra)


def train(config: TrainConfig, out, *, overwrite=False, verbose=None,
          prepare_model=None, initial_weights=None, reuse_finished=False,
          processes=None) -> dict:
    """Trains (or resumes training) and writes the run's files into `out`.

    Args:
        config: TrainConfig.
        out: output folder.
        overwrite: start afresh even if `out` holds a finished run.
        verbose: Keras verbosity; default: progress bar on a terminal, one
            line per epoch otherwise.
        prepare_model: function(model) called before compiling (freezing
            layers for transfer learning).
        initial_weights: a .keras/.weights.h5 file to start from.
        reuse_finished: return the metrics of a finished run in `out`
            instead of refusing to overwrite it.
        processes: a zoo.distributed.ProcessGroup: this process is one of
            an N-process data-parallel job (JAX backend; docs/distributed.md);
            only process 0 writes into `out`.

    Returns:
        The metrics dict also written to metrics.json.

    Example:
        >>> train(TrainConfig("resnet20", dataset="digits", epochs=3), "runs/r20")
    """
    config.validate()
    out = Path(out)
    if reuse_finished and (out / "metrics.json").is_file() and not overwrite:
        return json.loads((out / "metrics.json").read_text())
    group = _join(processes, config)
    chief = group is None or group.is_chief
    if chief:
        _prepare_out(out, config, overwrite)
        write_json(out / "config.json", config.to_dict())
    if group is not None:
        distributed.barrier("zoo-train-out-ready")
    if verbose is None:
        verbose = (1 if sys.stdout.isatty() else 2) if chief else 0
    previous_policy = keras.mixed_precision.dtype_policy().name
    keras.utils.set_random_seed(config.seed)
    shard = group.shard if group is not None and group.num_processes > 1 else None
    data = _load_data(config, shard)
    start = time.perf_counter()
    try:
        keras.mixed_precision.set_global_policy(config.precision)
        model, summary, steps, epochs = _build_and_compile(
            config, data, verbose, prepare_model, initial_weights, shard)
        result = _fit_and_test(config, model, data, out, summary=summary, steps=steps,
                               epochs=epochs, verbose=verbose, chief=chief,
                               group=group, shard=shard)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if group is not None:
        result["weights_sha256"] = distributed.weights_digest(model)
        result["process"] = f"{group.process_id}/{group.num_processes}"
    if not chief:
        return result
    return _write_outputs(model, out, config, data.info, result, steps,
                          time.perf_counter() - start)


def _load_data(config, shard):
    """The run's data (this process's part of each batch under `shard`)."""
    return data_lib.load(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        channels=config.channels, batch_size=config.batch_size,
        validation_split=config.validation_split, augment=config.augmentation,
        seed=config.seed, preprocessing_mode=config.preprocessing,
        limit=config.limit, shard=shard)


def _join(processes, config):
    """Joins a multi-process job (None when there is none)."""
    if processes is None:
        return None
    if config.fine_tune:
        raise InputError("Fine-tuning (--fine-tune) runs in one process; its "
                         "linear probe is not data-parallel. Drop --processes "
                         "or --fine-tune.")
    distributed.start(processes)
    return processes


def _build_and_compile(config, data, verbose, prepare_model, initial_weights, shard):
    """The compiled model, the fine-tuning summary (or None), and the
    budget (steps per epoch, epochs)."""
    info = data.info
    strategy = _strategy(config.strategy)
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = build_model_for(config, info)
        if initial_weights is not None:
            from zoo import weights as weights_lib
            weights_lib.assign(model, weights_lib.read_weights(initial_weights),
                               source=str(initial_weights))
        if prepare_model is not None:
            prepare_model(model)
        summary = _prepare_fine_tune(config, model, data) if config.fine_tune \
            else None
        epochs, steps = budget(info.num_train, config.batch_size, config.epochs,
                               config.min_steps, drop_remainder=shard is not None)
        _say(verbose, f"budget: {epochs} epochs × {steps} steps = "
                      f"{epochs * steps} optimizer steps, batch "
                      f"{config.batch_size} ({config.schedule}, peak lr "
                      f"{config.learning_rate:g})"
                      + (f", {shard[1]} processes" if shard else ""))
        explicit = config.warmup_epochs is not None
        if explicit and config.warmup_epochs >= epochs:
            raise InputError(f"warmup_epochs ({config.warmup_epochs}) must be fewer "
                             f"than the run's {epochs} epochs.")
        schedule = make_schedule(config.schedule, config.learning_rate, steps * epochs,
                                 steps * (config.warmup_epochs if explicit else 1),
                                 max_warmup=None if explicit else 0.1)
        knobs = {k: getattr(config, k) for k in OPTIMIZER_KNOBS
                 if getattr(config, k) is not None}
        optimizer = make_optimizer(config.optimizer, schedule,
                                   weight_decay=config.weight_decay, **knobs)
        if summary is not None:
            transfer.scale_backbone_lr(optimizer, model, config.backbone_lr_factor)
            _say(verbose, transfer.describe(
                summary, steps=steps, epochs=epochs,
                learning_rate=config.learning_rate,
                backbone_lr_factor=config.backbone_lr_factor))
        # Multi-process validation and test batches are padded with images
        # of weight 0 (zoo.data._pipeline): the loss and the accuracy are
        # weighted there, so that the padding does not count.
        reduction = "mean_with_sample_weight" if shard else "sum_over_batch_size"
        loss = heads.sparse_loss(model, keras, label_smoothing=config.label_smoothing,
                                 reduction=reduction)
        model.compile(optimizer=optimizer, loss=loss,
                      metrics=None if shard else ["accuracy"],
                      weighted_metrics=["accuracy"] if shard else None,
                      jit_compile=config.jit_compile
                      if keras.backend.backend() == "tensorflow" else "auto")
    return model, summary, steps, epochs


def _fit_and_test(config, model, data, out, *, summary, steps, epochs, verbose,
                  chief, group, shard):
    """Fits with the run's callbacks, restores the best epoch, tests."""
    info = data.info
    train_ds, val_ds, test_ds = data.train, data.val, data.test
    if config.label_smoothing:
        k = model.output_shape[-1]
        train_ds, val_ds, test_ds = (data_lib.one_hot(ds, k)
                                     for ds in (train_ds, val_ds, test_ds))
    monitor = "val_accuracy" if val_ds is not None else "accuracy"
    callbacks = default_callbacks(out, monitor) if chief else [
        NaNGuard(), RestoreOnly(str(out / "backup"), double_checkpoint=True,
                                delete_checkpoint=False)]
    if chief and summary is not None and summary["probe"]:
        _probe_is_the_floor(summary, model, callbacks[-1], monitor, out)
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.patience, mode="max"))
    if chief and config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard")))
    per_pass = info.num_train // config.batch_size if shard else \
        math.ceil(info.num_train / config.batch_size)
    passes = steps // max(1, per_pass)
    callbacks.append(ResumeDataOrder(data.train_pass, max(passes, 1)))
    build_for_fit(model, train_ds)
    try:
        model.fit(train_ds.repeat() if passes > 1 else train_ds,
                  steps_per_epoch=steps if passes > 1 else None,
                  validation_data=val_ds, epochs=epochs,
                  callbacks=callbacks, verbose=verbose, shuffle=False)
    except NaNLoss as nan:
        raise TrainingError(
            f"The loss or the weights became NaN in epoch {nan.epoch}; training "
            f"stopped. Try a lower learning rate (now "
            f"{config.learning_rate:g}), another optimizer, or "
            "precision float32. Earlier outputs in "
            f"{out} were left untouched.") from None
    if group is not None:
        distributed.barrier("zoo-train-fit-done")   # best.keras is written
    return _select_and_test(config, model, info, test_ds, out)


def _select_and_test(config, model, info, test_ds, out) -> dict:
    """Keeps the last epoch or restores the best one (config.selection, or
    the recipe's rule for this validation size) and tests the kept model;
    the other choice's test accuracy is reported beside it (a measurement,
    never used to choose)."""
    keep = config.selection or RECIPE.selection(info.num_val)
    scores = {"last": model.evaluate(test_ds, verbose=0, return_dict=True)}
    if (out / "best.keras").is_file():
        with warnings.catch_warnings():
            # The probe's checkpoint (fine-tuning) was saved before the
            # optimizer was built; only the weights are wanted here.
            warnings.filterwarnings("ignore", message="Skipping variable "
                                    "loading for optimizer")
            last = [w.numpy() for w in model.weights]
            model.load_weights(out / "best.keras")
            scores["best"] = model.evaluate(test_ds, verbose=0, return_dict=True)
            if keep == "last":
                for variable, value in zip(model.weights, last):
                    variable.assign(value)
    kept = scores.get(keep, scores["last"])
    return {"test_accuracy": float(kept["accuracy"]), "test_loss": float(kept["loss"]),
            "selection": keep if keep in scores else "last",
            "test_accuracy_by_selection": {k: float(v["accuracy"]) for k, v in scores.items()}}


def _write_outputs(model, out, config, info, result, steps, wall_time_s):
    """model.keras, history.csv, curves.png, metrics.json; removes the
    run's temporary files."""
    rows = _history_rows(out / "log.csv")
    with distributed.local_only():
        save_model(model, out / "model.keras")
    _write_history(rows, out / "history.csv")
    if rows:
        plot_curves(rows, out / "curves.png")
    metrics = {
        **result,
        "params": int(model.count_params()),
        "epochs": len(rows),
        "optimizer_steps": len(rows) * steps,
        "wall_time_s": round(wall_time_s, 2),
        "dataset": info.to_dict(),
        "config": config.to_dict(),
    }
    write_json(out / "metrics.json", metrics)
    _cleanup(out)
    return metrics


class Backup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore; in a multi-process run process 0 writes it
    outside the distribution (see zoo.distributed.local_only)."""

    def _save_model(self):
        with distributed.local_only():
            super()._save_model()


class RestoreOnly(Backup):
    """The backup of processes other than 0 of a multi-process run: they
    resume from process 0's backup and never write it."""

    def _save_model(self):
        """Process 0 writes the backup; this process only reads it."""


def _probe_is_the_floor(summary, model, best_checkpoint, monitor, out):
    """Phase 2 never ends below phase 1: the probed model is the first
    "best" (a resumed run keeps a better one it already has)."""
    probe = summary["probe"]
    floor = probe["val_accuracy" if monitor == "val_accuracy" else "train_accuracy"]
    best_checkpoint.set_model(model)
    best_checkpoint.on_epoch_end(-1, {monitor: floor})
    write_json(out / "probe.json", {**summary, "monitor": monitor})


def _prepare_fine_tune(config, model, data):
    """Phase 1 of LP-FT inside `train` (see zoo.transfer.prepare)."""
    probe_data = data.train
    if config.augmentation != "none":
        probe_data = data_lib.load(
            config.dataset, data_dir=config.data_dir, image_size=config.image_size,
            channels=config.channels, batch_size=config.batch_size,
            validation_split=config.validation_split, seed=config.seed,
            preprocessing_mode=config.preprocessing, limit=config.limit).train
    return transfer.prepare(model, probe_data, data.val, keep_head=config.keep_head,
                            bn=config.bn, batch_size=config.batch_size,
                            seed=config.seed, name=config.model)


def _say(verbose, text):
    if verbose:
        print(text, flush=True)


def _cleanup(out: Path):
    import shutil
    shutil.rmtree(out / "backup", ignore_errors=True)
    for name in ("best.keras", "best.json"):
        (out / name).unlink(missing_ok=True)


