"""`compress`: prune → cluster → quantize → LiteRT, with a report."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from compression import options as opts
from compression.options import CompressionError
from zoo.io import atomic_path, check_writable_dir, write_json

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
            "data_dir": None if data_dir is None else str(data_dir), **options}


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


def compress(model, data, *, out, prune=None, structure=None, clusters=None,
             init="kmeans++", quantize="int8", epochs=1, learning_rate=1e-4,
             io="float", data_dir=None, latency_runs=50, eval_limit=None,
             verbose=0):
    """Compresses a zoo model and writes the deployable `.tflite` and a report.

    Args:
        model: Keras 3 model or path to a `.keras` file.
        data: zoo.data.Data, or a source string ("digits", "fashion_mnist",
            ...) loaded at the model's input size.
        out: output folder: model.tflite, report.json/.md/.png, and
            pruned.keras / clustered.keras where they apply. When `model` is
            a file and `data` a source name, progress.json records finished
            steps: rerunning the same call after a kill loads the saved
            pruned/clustered model instead of training it again.
        prune: target sparsity in (0, 1), or None.
        structure: "m:n" structured sparsity (e.g. "2:4"), or None.
        clusters: number of weight clusters (>= 2), or None.
        quantize: "int8" (post-training, full integer), "qat"
            (quantization-aware training; pruning- or cluster-preserving when
            the model was pruned or clustered), "dynamic", "float16" or None.
        epochs: fine-tuning epochs of each TF-MOT step.

    Returns:
        The report dict: {"variants": [{"name", "accuracy", "size_bytes",
        "gzip_bytes", "sparsity", "latency_ms", ...}], ...}; the first variant
        is "float", the delivered one "compressed".

    Example:
        >>> compression.compress("runs/r20/model.keras", "digits", prune=0.8,
        ...                      quantize="int8", out="runs/r20_small")
    """
    # Every option is checked before any model or data work.
    sparsity = opts.check_sparsity(prune)
    mn = opts.check_structure(structure)
    clusters = opts.check_clusters(clusters)
    opts.check_init(init)
    opts.check_quantize(quantize)
    opts.check_epochs(epochs)
    opts.check_learning_rate(learning_rate)
    opts.check_epochs(latency_runs, "latency_runs")
    if eval_limit is not None:
        opts.check_epochs(eval_limit, "eval_limit")
    if io not in ("float", "int8"):
        raise CompressionError(f"io must be 'float' or 'int8'; got {io!r}.")
    out = check_writable_dir(out)
    start = time.perf_counter()
    options = {"prune": sparsity, "structure": structure, "clusters": clusters,
               "init": init, "quantize": quantize, "epochs": epochs, "io": io,
               "learning_rate": learning_rate}
    from zoo import inference
    model_path = model if isinstance(model, (str, Path)) else None
    if model_path is not None:
        model = inference.load_keras(model_path)
    fingerprint = _fingerprint(model_path, data, data_dir, options)
    finished = _finished_steps(out, fingerprint)
    finished_before = set(finished)
    from compression import bridge
    bridge.to_tf_keras(model)       # refuses unbridgeable models before training
    data = _load_data(data, model, data_dir)
    from compression import report as rep
    runs = dict(runs=latency_runs, limit=eval_limit)
    variants = [rep.keras_variant("float", model, data, **runs)]
    details = {}
    current = model

    def step(name, variant, run):
        """Runs a TF-MOT step, or reloads its model when a killed run with
        the same inputs finished it; saves, records and reports it."""
        if name in finished:
            result, info = inference.load_keras(out / STEP_FILES[name]), finished[name]
        else:
            result, info = run()
            with atomic_path(out / STEP_FILES[name]) as tmp:
                result.save(tmp)
            finished[name] = info
            if fingerprint is not None:
                write_json(out / PROGRESS, {"fingerprint": fingerprint,
                                            "done": finished})
        details[name] = info
        variants.append(rep.keras_variant(variant, result, data, **runs))
        return result

    if sparsity is not None or mn is not None:
        from compression.prune import prune as do_prune
        current = step("prune", "pruned", lambda: do_prune(
            current, data, sparsity=sparsity if sparsity is not None else 0.5,
            structure=structure, epochs=epochs, learning_rate=learning_rate,
            verbose=verbose))
    if clusters is not None:
        from compression.cluster import cluster as do_cluster
        current = step("cluster", "clustered", lambda: do_cluster(
            current, data, clusters=clusters, init=init,
            preserve_sparsity="prune" in details, epochs=epochs,
            learning_rate=learning_rate / 10, verbose=verbose))
    from compression.quantize import convert, quantize_aware
    if quantize == "qat":
        preserve = "cluster" if "cluster" in details else (
            "sparsity" if "prune" in details else None)
        qat_model = quantize_aware(current, data, epochs=epochs,
                                   learning_rate=learning_rate / 10, preserve=preserve,
                                   verbose=verbose)
        blob = convert(qat_model, "qat", data=data, io=io)
        details["qat"] = {"preserve": preserve}
    else:
        blob = convert(current, quantize, data=data, io=io)
    with atomic_path(out / "model.tflite") as tmp:
        Path(tmp).write_bytes(blob)
    stats = rep.weight_stats(current)
    variants.append(rep.tflite_variant(
        "compressed", blob, data, sparsity=stats["sparsity"],
        nonzero=stats["nonzero_params"], params=stats["params"], **runs))
    extra = {"options": options, "details": details,
             "resumed_steps": sorted(finished_before),
             "wall_time_s": round(time.perf_counter() - start, 1)}
    rep.write_report(out, variants, extra)
    return {"variants": variants, **extra}


def demo_step(out, metrics, quick):
    """`zoo demo`'s compression pass: 50 % pruning + int8 of the demo model."""
    report = compress(Path(out) / "train" / "model.keras", "digits",
                      out=Path(out) / "compress", prune=0.5, quantize="int8",
                      epochs=1, latency_runs=10 if quick else 30)
    base, final = report["variants"][0], report["variants"][-1]
    text = (f"Compression (50 % pruning + int8 LiteRT): accuracy "
            f"{base['accuracy']:.4f} → {final['accuracy']:.4f}, gzip size "
            f"{base['gzip_bytes'] / 1e3:.0f} kB → {final['gzip_bytes'] / 1e3:.0f} kB "
            f"({base['gzip_bytes'] / final['gzip_bytes']:.1f}× smaller). "
            f"Report: `{Path(out) / 'compress' / 'report.md'}`.")
    return text, {"float": base, "compressed": final}
