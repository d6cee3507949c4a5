"""Per-step overhead of the zoo's training loop and input pipeline.

    python benchmarks/step_overhead.py [--model resnet20] [--dataset digits]
        [--image-size 16] [--batch 64] [--epochs 4] [--json out.json]

Trains the same model for a few epochs in several configurations and
reports the median time per training step (first epoch excluded: it
traces the step function):

* the input: `zoo.data.load(...).train` (the pipeline `zoo train` uses)
  against the same batches materialised in memory;
* the callbacks: none, against exactly those `zoo.training.train`
  installs (BackupAndRestore, NaN guard, CSVLogger, best-model
  checkpoint);
* `steps_per_execution`: 1 (Keras' default) against several steps per
  call of the compiled function.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
_spec = importlib.util.spec_from_file_location("bench_common", _HERE / "common.py")
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
dump, machine = _common.dump, _common.machine


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
    if variant["callbacks"]:
        callbacks = training.default_callbacks(Path(out), monitor="accuracy")
    timer = _epoch_timer()
    source = in_memory if variant["input"] == "in memory" else data.train
    model.fit(source, epochs=args.epochs, callbacks=[*callbacks, timer], verbose=0)
    steps = sum(1 for _ in data.train)
    per_step = statistics.median(timer.times[1:]) / steps * 1e3
    return {**variant, "ms_per_step": per_step, "steps_per_epoch": steps,
            "img_per_s": args.batch / per_step * 1e3}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--spe", type=int, default=8,
                        help="steps_per_execution of the last variant")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import tensorflow as tf
    from zoo import data as data_lib
    data = data_lib.load(args.dataset, image_size=args.image_size,
                         batch_size=args.batch, validation_split=0.0, limit=args.limit)
    batches = list(data.train)
    in_memory = tf.data.Dataset.from_tensor_slices(
        (tf.concat([x for x, _ in batches], 0), tf.concat([y for _, y in batches], 0))
    ).batch(args.batch).cache()
    variants = [
        {"input": "in memory", "callbacks": False, "spe": 1},
        {"input": "zoo pipeline", "callbacks": False, "spe": 1},
        {"input": "zoo pipeline", "callbacks": True, "spe": 1},
        {"input": "zoo pipeline", "callbacks": True, "spe": args.spe},
    ]
    rows = []
    for variant in variants:
        with tempfile.TemporaryDirectory() as out:
            rows.append(run(variant, args, data, in_memory, out))
    print(f"machine: {machine()}\n")
    print(f"{args.model} on {args.dataset} at {args.image_size}px, batch {args.batch}, "
          f"median of epochs 2–{args.epochs}\n")
    print("| input | zoo.training callbacks | steps_per_execution | ms per step | img/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['input']} | {'yes' if r['callbacks'] else 'no'} | {r['spe']} | "
              f"{r['ms_per_step']:.2f} | {r['img_per_s']:.0f} |")
    dump(args.json, {"args": vars(args), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
