"""Training a zoo model from a config: optimizers, schedules, callbacks,
precision, distribution, resumable runs and atomic outputs.

`train(TrainConfig(...), out="runs/x")` writes into `out`:

* ``model.keras``   – the kept model (zoo.recipe: the last epoch, or the best
  by validation accuracy on a split of at least 1,000 images),
* ``history.csv``   – one row per epoch,
* ``metrics.json``  – test accuracy/loss, params, epochs, wall time, config,
* ``curves.png``    – loss and accuracy curves,
* ``config.json``   – the configuration, to repeat the run.

Killing the process and running the same command again resumes from the
last finished epoch (Keras' BackupAndRestore keeps model and optimizer state
in ``out/backup``); every output is written atomically.

Pieces in modules of their own: `zoo.train_config` (the configuration),
`zoo.callbacks`, `zoo.history`, `zoo.optim` (optimizers and schedules),
`zoo.budget` (steps), `zoo.devices` (precision, strategy), `zoo.recipe`.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from pathlib import Path

import keras

from zoo import data as data_lib
from zoo import distributed
from zoo.devices import _cpu_has_bf16, _strategy, fast_path  # noqa: F401
from zoo import heads, registry, transfer
from zoo.budget import (DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, MIN_EPOCH_STEPS,  # noqa: F401
                        budget)
from zoo.callbacks import (AtomicBestCheckpoint, Backup, NaNGuard,  # noqa: F401
                           NaNLoss, RestoreOnly, ResumeDataOrder, default_callbacks,
                           diverged)
from zoo.errors import InputError
from zoo.history import history_rows, write_history, plot_curves
from zoo.io import check_writable_dir, save_model, write_json
from zoo.optim import (DEFAULT_LR, FINE_TUNE_LR, OPTIMIZER_KNOBS, OPTIMIZERS,  # noqa: F401
                       SCHEDULES, build_for_fit, check_optimizer, make_optimizer,
                       make_schedule)
from zoo.recipe import RECIPE
from zoo.train_config import (PRECISIONS, STRATEGIES, TrainConfig,  # noqa: F401
                              TrainingError)


def _holds_another_run(out: Path, config: TrainConfig) -> bool:
    """Whether `out` holds a run of another (or an unreadable) config; a
    finished run's metrics.json tells the size its images were stored at."""
    try:
        saved = json.loads((out / "config.json").read_text())
    except FileNotFoundError:
        return False
    except ValueError:
        return True
    try:
        stored = json.loads((out / "metrics.json").read_text())["dataset"]["source_shape"]
        return bool(config.changed_from(saved, (int(stored[0]), int(stored[1]))))
    except (OSError, ValueError, LookupError, TypeError):
        return bool(config.changed_from(saved))


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
        changed = config.changed_from(previous)
        if changed:
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
        prepare_model: function(model) called before compiling (freezing).
        initial_weights: a .keras/.weights.h5 file to start from.
        reuse_finished: return a finished run of this configuration in `out`;
            replace a run of another one (a search's final run owns `out`).
        processes: a zoo.distributed.ProcessGroup of a data-parallel JAX job
            (docs/distributed.md); only process 0 writes into `out`.

    Returns:
        The metrics dict also written to metrics.json.

    Example:
        >>> train(TrainConfig("resnet20", dataset="digits", epochs=3), "runs/r20")
    """
    config.validate()
    out = Path(out)
    if reuse_finished and not overwrite:
        overwrite = _holds_another_run(out, config)
        if not overwrite and (out / "metrics.json").is_file():
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
    """The run's data (this process's part of each batch under `shard`),
    checked against the config's model selection."""
    data = data_lib.load(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        min_image_size=config.min_image_size,
        channels=config.channels, batch_size=config.batch_size,
        validation_split=config.validation_split, augment=config.augmentation,
        seed=config.seed, preprocessing_mode=config.preprocessing,
        limit=config.limit, shard=shard)
    config.check_validation_size(data.info.num_val)
    return data


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
                      f"{config.learning_rate:g}, augmentation {config.augmentation})"
                      + (f", {shard[1]} processes" if shard else ""))
        _say(verbose, config.images_line(info))
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
        _compile(model, config, optimizer, shard, label_smoothing=config.label_smoothing)
    return model, summary, steps, epochs


def _compile(model, config, optimizer, shard, *, label_smoothing):
    """Compiles for training (smoothed one-hot labels) or the test (indices)."""
    # Multi-process validation and test batches are padded with images
    # of weight 0 (zoo.input_pipeline.batched_pipeline): the loss and the accuracy are
    # weighted there, so that the padding does not count.
    reduction = "mean_with_sample_weight" if shard else "sum_over_batch_size"
    model.compile(optimizer=optimizer, loss=heads.sparse_loss(
                      model, keras, label_smoothing=label_smoothing, reduction=reduction),
                  metrics=None if shard else ["accuracy"],
                  weighted_metrics=["accuracy"] if shard else None,
                  jit_compile=config.jit_compile
                  if keras.backend.backend() == "tensorflow" else "auto")


def _fit_and_test(config, model, data, out, *, summary, steps, epochs, verbose,
                  chief, group, shard):
    """Fits with the run's callbacks, restores the best epoch, tests."""
    info = data.info
    train_ds, val_ds, test_ds = data.train, data.val, data.test
    if config.label_smoothing:
        k = model.output_shape[-1]
        train_ds, val_ds = (data_lib.one_hot(ds, k) for ds in (train_ds, val_ds))
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
    if config.label_smoothing:   # the test loss of model.keras and zoo evaluate
        _compile(model, config, model.optimizer, shard, label_smoothing=0.0)
    return _select_and_test(config, model, info, test_ds, out)


def _select_and_test(config, model, info, test_ds, out) -> dict:
    """Keeps the last epoch or restores the best one (config.selection, or
    the recipe's rule for this validation size; the last epoch where the
    validation split is also the test split, so that the test images never
    choose the model) and tests the kept model; the other choice's test
    accuracy is reported beside it (a measurement, never used to choose)."""
    keep = config.selection or ("last" if info.test_is_validation
                                else RECIPE.selection(info.num_val))
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
    rows = history_rows(out / "log.csv")
    with distributed.local_only():
        # Compiled for the test (_fit_and_test) on class indices, as users'
        # labels are: the smoothed one-hot loss belongs to the training.
        save_model(model, out / "model.keras")
    write_history(rows, out / "history.csv")
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
            min_image_size=config.min_image_size,
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
