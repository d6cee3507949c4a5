"""Per-step overhead of the zoo's training loop and input pipeline.

    python benchmarks/step_overhead.py [--model resnet20] [--dataset digits]
        [--image-size 16] [--batch 16] [--epochs 4] [--reps 2] [--json out.json]

Trains the same model for a few epochs in several configurations and
reports the median time per training step (first epoch excluded: it
traces the step function):

* the input: `zoo.data.load(...).train` (the pipeline `zoo train` uses)
  against the same batches materialised in memory;
* the callbacks: none; stock Keras callbacks for the same jobs
  (BackupAndRestore, TerminateOnNaN, CSVLogger: what zoo.training used to
  install); exactly those `zoo.training.train` installs now;
* `steps_per_execution`: 1 (Keras' default) against several steps per
  call of the compiled function.
"""

from __future__ import annotations

import argparse
import runpy
import statistics
import tempfile
import time
from pathlib import Path

# Loaded by path; it also takes this folder off sys.path (see common.py).
_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
dump, machine, parse, machine_line = (
    _common[k] for k in ("dump", "machine", "parse", "machine_line"))


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)
    return EpochTimer()


def run(variant, args, data, in_memory, out):
    import keras
    import zoo
    from zoo import training
    keras.utils.set_random_seed(0)
    model = zoo.create_model(args.model, input_shape=data.info.image_shape,
                             num_classes=data.info.num_classes)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=variant["spe"])
    callbacks = []
    if variant["callbacks"] == "zoo.training":
        callbacks = training.default_callbacks(Path(out), monitor="accuracy")
    elif variant["callbacks"] == "stock Keras":
        # What zoo.training used before: the same jobs done by stock callbacks
        # that have per-batch hooks.
        callbacks = [keras.callbacks.BackupAndRestore(str(Path(out) / "backup")),
                     keras.callbacks.TerminateOnNaN(),
                     keras.callbacks.CSVLogger(str(Path(out) / "log.csv"))]
    # The first timer stops before the other callbacks' epoch-end work (the
    # steps alone); the last one after it (steps + saving).
    steps_timer, total_timer = _epoch_timer(), _epoch_timer()
    source = in_memory if variant["input"] == "in memory" else data.train
    model.fit(source, epochs=args.epochs, verbose=0,
              callbacks=[steps_timer, *callbacks, total_timer])
    steps = sum(1 for _ in data.train)
    per_step = statistics.median(steps_timer.times[1:]) / steps * 1e3
    epoch_end = statistics.median(
        t - s for t, s in zip(total_timer.times[1:], steps_timer.times[1:])) * 1e3
    return {**variant, "ms_per_step": per_step, "epoch_end_ms": epoch_end,
            "steps_per_epoch": steps}


# The table of docs/benchmarks.md, as printed here.
TABLE = ("| input | callbacks | steps_per_execution | ms per step | "
         "callbacks' epoch-end work |")


def markdown(result) -> str:
    """Median ms per step (each interleaved run's in brackets)."""
    args = result["args"]
    lines = [f"Machine: {machine_line(result['machine'])}. {args['model']} on "
             f"{args['dataset']} at {args['image_size']}px, batch {args['batch']}: median "
             f"of epochs 2–{args['epochs']}, median of {args['reps']} interleaved runs.",
             "", TABLE, "|---|---|---|---|---|"]
    for r in result["rows"]:
        each = ", ".join(f"{run['ms_per_step']:.1f}" for run in r["runs"])
        end = "–" if r["callbacks"] == "none" else f"{r['epoch_end_ms']:.0f} ms"
        lines.append(f"| {r['input']} | {r['callbacks']} | {r['spe']} | "
                     f"{r['ms_per_step']:.1f} ({each}) | {end} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16,
                        help="small batches make per-step overhead visible")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--spe", type=int, default=8,
                        help="steps_per_execution of the last variant")
    parser.add_argument("--limit", type=int)
    args = parse(parser, markdown, argv)
    if args is None:
        return None
    import tensorflow as tf
    from zoo import data as data_lib
    data = data_lib.load(args.dataset, image_size=args.image_size,
                         batch_size=args.batch, validation_split=0.0, limit=args.limit)
    batches = list(data.train)
    in_memory = tf.data.Dataset.from_tensor_slices(
        (tf.concat([x for x, _ in batches], 0), tf.concat([y for _, y in batches], 0))
    ).batch(args.batch).cache()
    variants = [
        {"input": "in memory", "callbacks": "none", "spe": 1},
        {"input": "zoo pipeline", "callbacks": "none", "spe": 1},
        {"input": "zoo pipeline", "callbacks": "stock Keras", "spe": 1},
        {"input": "zoo pipeline", "callbacks": "zoo.training", "spe": 1},
        {"input": "zoo pipeline", "callbacks": "zoo.training", "spe": args.spe},
    ]
    runs = {i: [] for i in range(len(variants))}
    for _ in range(args.reps):          # interleaved repetitions
        for i, variant in enumerate(variants):
            with tempfile.TemporaryDirectory() as out:
                runs[i].append(run(variant, args, data, in_memory, out))
    rows = []
    for i, variant in enumerate(variants):
        ms = statistics.median(r["ms_per_step"] for r in runs[i])
        end = statistics.median(r["epoch_end_ms"] for r in runs[i])
        rows.append({**variant, "ms_per_step": ms, "epoch_end_ms": end,
                     "runs": runs[i], "img_per_s": args.batch / ms * 1e3})
    result = {"machine": machine(), "args": vars(args), "rows": rows}
    print(markdown(result))
    dump(args.json, result)
    return rows


if __name__ == "__main__":
    main()
