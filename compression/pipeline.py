"""`compress`: prune → cluster → quantize → LiteRT, with a report."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from . import finetune, options as opts, presets
from .options import CompressionError
from zoo.io import atomic_path, check_writable_dir, save_model, write_json

PROGRESS = "progress.json"
STEP_FILES = {"prune": "pruned.keras", "cluster": "clustered.keras"}   # in order


def _load_data(data, model, data_dir=None, batch_size=64, limit=None):
    from zoo import data as data_lib
    if not isinstance(data, str):
        return data
    shape = model.input_shape[1:]
    return data_lib.load(data, data_dir=data_dir, image_size=tuple(shape[:2]),
                         channels=shape[2], batch_size=batch_size, limit=limit)


def _fingerprint(model_path, data, data_dir, options):
    """What identifies a run for resuming, or None for an in-memory model."""
    if model_path is None or not isinstance(data, str):
        return None
    digest = hashlib.sha256()
    with open(model_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"model_sha256": digest.hexdigest(), "data": data,
            "data_dir": None if data_dir is None else str(data_dir), **options.as_dict()}


def _finished_steps(out, fingerprint):
    """Steps a killed run with the same inputs finished: {step: details}."""
    path = out / PROGRESS
    if fingerprint is None or not path.is_file():
        return {}
    try:
        progress = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if progress.get("fingerprint") != fingerprint:
        return {}
    done = progress.get("done", {})
    # A step counts only with its saved model, and only if every step before
    # it counts too.
    kept = {}
    for step, file in STEP_FILES.items():
        if step in done and (out / file).is_file():
            kept[step] = done[step]
        elif step in done:
            break
    return kept


def check_options(preset, prune, structure, clusters, init, quantize, steps, epochs,
                  learning_rate, io, latency_runs, eval_limit,
                  distribution=None) -> opts.CompressionOptions:
    """Every option checked (before any model or data work), the preset
    filled in under the explicit ones: the options of the run."""
    chosen = presets.resolve(preset, prune=prune, structure=structure,
                             clusters=clusters, quantize=quantize,
                             distribution=distribution)
    opts.check_structure(chosen["structure"])
    for value, what in ((steps, "steps"), (epochs, "epochs"),
                        (eval_limit, "eval_limit")):
        if value is not None:
            opts.check_epochs(value, what)
    if steps is not None and epochs is not None:
        raise CompressionError("Give the fine-tuning budget as steps or as epochs, "
                               "not both.")
    opts.check_epochs(latency_runs, "latency_runs")
    if io not in ("float", "int8"):
        raise CompressionError(f"io must be 'float' or 'int8'; got {io!r}.")
    options = opts.CompressionOptions(
        preset=preset,
        prune=None if chosen["prune"] is None else opts.check_sparsity(chosen["prune"]),
        distribution=None if chosen["distribution"] is None
        else opts.check_distribution(chosen["distribution"]),
        structure=chosen["structure"], clusters=opts.check_clusters(chosen["clusters"]),
        init=opts.check_init("kmeans++" if init is None else init),
        quantize=opts.check_quantize(chosen["quantize"]), steps=steps, epochs=epochs,
        passes=chosen["passes"], io=io, learning_rate=opts.check_learning_rate(
            finetune.LEARNING_RATE if learning_rate is None else learning_rate))
    _check_effect(options, init=init, steps=steps, epochs=epochs,
                  learning_rate=learning_rate, io=io)
    return options


def _check_effect(options, *, init, steps, epochs, learning_rate, io):
    """Options that would have no effect in this run are refused
    (docs/errors.md): a fine-tuning budget or rate when nothing is
    fine-tuned, centroids without clustering, int8 input/output without
    integer quantization."""
    given = [f"{name}={value!r}" for name, value in
             (("steps", steps), ("epochs", epochs), ("learning_rate", learning_rate))
             if value is not None]
    if given and not options.trains:
        raise CompressionError(
            f"{', '.join(given)} would have no effect: they set the fine-tuning of "
            "pruning, clustering and QAT, and this run fine-tunes nothing (quantize "
            f"{options.quantize!r} after no training step). Drop them, or add "
            "prune, structure, clusters or quantize='qat'.")
    if not options.trains and options.quantize is None:
        raise CompressionError(
            "Nothing to compress: no pruning, structure, clusters or quantization "
            "in this run (quantize None), so the result would be the float model "
            "unchanged. Add --prune/--structure/--cluster/--quantize or a "
            "--preset, or use zoo export for a float LiteRT file.")
    if init is not None and options.clusters is None:
        raise CompressionError(f"init={init!r} chooses clustering's centroids and "
                               "would have no effect without clusters (--cluster K).")
    if io == "int8" and options.quantize not in ("int8", "qat"):
        raise CompressionError(f"io='int8' would have no effect with quantize "
                               f"{options.quantize!r}: int8 inputs and outputs "
                               "need integer quantization (int8 or qat).")


class _Run:
    """One compress() call: its folder, resumable steps and report rows."""

    def __init__(self, out, model_path, data, data_dir, options, runs):
        self.out, self.options, self.runs = out, options, runs
        self.fingerprint = _fingerprint(model_path, data, data_dir, options)
        self.finished = _finished_steps(out, self.fingerprint)
        self.resumed = sorted(self.finished)
        self.details, self.variants = {}, []

    def budget(self, kind, data) -> dict:
        """A step's fine-tuning budget in steps: the caller's steps or epochs,
        else the default floor with the preset's least number of passes."""
        o = self.options
        return {"steps": finetune.steps_for(data, kind, steps=o.steps,
                                            epochs=o.epochs, passes=o.passes)}

    def step(self, name, variant, run, data):
        """Runs a TF-MOT step, or reloads its model when a killed run with
        the same inputs finished it; saves, records and reports it."""
        from . import report as rep
        from zoo import inference
        if name in self.finished:
            result = inference.load_keras(self.out / STEP_FILES[name])
            info = self.finished[name]
        else:
            result, info = run()
            save_model(result, self.out / STEP_FILES[name])
            self.finished[name] = info
            if self.fingerprint is not None:
                write_json(self.out / PROGRESS, {"fingerprint": self.fingerprint,
                                                 "done": self.finished})
        self.details[name] = info
        self.variants.append(rep.keras_variant(variant, result, data, **self.runs))
        return result


def _train(run, model, data, verbose):
    """Pruning, then clustering (sparsity-preserving after pruning): the
    Keras 3 model both leave."""
    o, lr = run.options, run.options.learning_rate
    if o.prune is not None or o.structure is not None:
        from .prune import prune
        model = run.step("prune", "pruned", lambda: prune(
            model, data, sparsity=o.prune,
            structure=o.structure, distribution=o.distribution,
            learning_rate=lr, verbose=verbose,
            **run.budget("prune", data)), data)
    if o.clusters is not None:
        from .cluster import cluster
        model = run.step("cluster", "clustered", lambda: cluster(
            model, data, clusters=o.clusters, init=o.init,
            preserve_sparsity="prune" in run.details, learning_rate=lr / 10,
            verbose=verbose, **run.budget("cluster", data)), data)
    return model


def _deliver(run, model, data, verbose) -> bytes:
    """The deployable LiteRT file: QAT (pruning-/cluster-preserving after
    those steps: PQAT, CQAT, PCQAT) or post-training quantization."""
    from .quantize import convert, quantize_aware
    o = run.options
    if o.quantize != "qat":
        return convert(model, o.quantize, data=data, io=o.io)
    preserve = "cluster" if "cluster" in run.details else (
        "sparsity" if "prune" in run.details else None)
    qat_model = quantize_aware(model, data, learning_rate=o.learning_rate / 10,
                               preserve=preserve, verbose=verbose,
                               **run.budget("qat", data))
    run.details["qat"] = {"preserve": preserve,
                          "sparsity_preserved": "prune" in run.details}
    return convert(qat_model, "qat", data=data, io=o.io)


def compress(model, data, *, out, preset=None, prune=None, structure=None,
             clusters=None, init=None, quantize="auto", steps=None, epochs=None,
             learning_rate=None, io="float", data_dir=None, latency_runs=50,
             eval_limit=None, distribution=None, verbose=0):
    """Compresses a Keras 3 model (a zoo model or a user's CNN) and writes the
    deployable `.tflite` and a report (docs/compression.md).

    Args:
        model: Keras 3 model or path to a `.keras` file.
        data: zoo.data.Data, or a source string loaded at the model's input size.
        out: output folder: model.tflite, float.tflite, report.json/.md/.png,
            pruned.keras / clustered.keras. With a model file and a source
            name, progress.json lets a rerun after a kill skip finished steps.
        preset: None or a compression.presets.PRESETS name ("deep": prune →
            sparsity-preserving clustering → int8); explicit options win.
        prune, structure, clusters: target sparsity in (0, 1); "m:n"
            sparsity; number of weight clusters (>= 2). None: off.
        distribution: "uniform" or "erk" (prune.layer_sparsities); None:
            the preset's, else uniform.
        quantize: "auto" (the preset's, else "int8"), "int8", "qat"
            (pruning-/cluster-preserving after those steps), "dynamic",
            "float16" or None (float LiteRT).
        steps, epochs: fine-tuning budget of each step in optimizer steps or
            passes (default: finetune.steps_for, four passes for deep).
        learning_rate: Adam's peak rate for pruning (None: 3e-3, finetune.
            LEARNING_RATE), a tenth for clustering and QAT; cosine to zero.

    The classifier and the stem are never pruned or clustered (select_layers).

    Returns:
        The report: {"variants": [...], "details", "kernels", ...}; variants
        "float", "float LiteRT", the intermediate models, "compressed".

    Example:
        >>> compression.compress("runs/r20/model.keras", "digits", preset="deep",
        ...                      out="runs/r20_small")
    """
    options = check_options(preset, prune, structure, clusters, init, quantize, steps, epochs,
                            learning_rate, io, latency_runs, eval_limit, distribution)
    out, start = check_writable_dir(out), time.perf_counter()
    from . import bridge, report as rep
    from zoo import inference
    model_path = model if isinstance(model, (str, Path)) else None
    model = inference.load_keras(model_path) if model_path is not None else model
    bridge.to_tf_keras(model)       # refuses unbridgeable models before training
    run = _Run(out, model_path, data, data_dir, options,
               dict(runs=latency_runs, limit=eval_limit))
    data = _load_data(data, model, data_dir)
    run.variants.append(rep.keras_variant("float", model, data, **run.runs))
    from .quantize import convert
    # The float32 LiteRT file of the model as given: the latency baseline.
    _litert(run, "float LiteRT", "float.tflite", convert(model, None), model, data)
    current = _train(run, model, data, verbose)
    blob = _deliver(run, current, data, verbose)
    _litert(run, "compressed", "model.tflite", blob, current, data)
    extra = {"options": options.as_dict(), "details": run.details, "resumed_steps": run.resumed,
             "kernels": rep.tflite_kernels(blob),
             "wall_time_s": round(time.perf_counter() - start, 1)}
    rep.write_report(out, run.variants, extra)
    return {"variants": run.variants, **extra}


def _litert(run, name, file, blob, model, data):
    """Writes a LiteRT file into the run's folder and reports it (its
    sparsity and parameters are those of the Keras model it came from)."""
    from . import report as rep
    with atomic_path(run.out / file) as tmp:
        Path(tmp).write_bytes(blob)
    stats = rep.weight_stats(model)
    run.variants.append(rep.tflite_variant(
        name, blob, data, sparsity=stats["sparsity"], nonzero=stats["nonzero_params"],
        params=stats["params"], **run.runs))
