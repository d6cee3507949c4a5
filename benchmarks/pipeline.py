"""Input-pipeline throughput against the model's training step.

    python benchmarks/pipeline.py [--datasets digits,fashion_mnist]
        [--data-dir /usr/share/datasets/fashion-mnist] [--model resnet20]
        [--batch 128] [--batches 50] [--augment light] [--json out.json]

For each dataset: images/s the pipeline delivers on its own (after the
first, caching epoch) and images/s of the model's training step on one
cached batch; the pipeline is not the bottleneck when its rate is higher.
"""

from __future__ import annotations

import argparse
import runpy
import time
from pathlib import Path

import numpy as np

# Loaded by path; it also takes this folder off sys.path (see common.py).
_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
dump, machine, parse, machine_line = (
    _common[k] for k in ("dump", "machine", "parse", "machine_line"))

# The table of docs/benchmarks.md, as printed here.
TABLE = "| dataset | pipeline img/s | train step img/s | pipeline / step |"


def markdown(result) -> str:
    args = result["args"]
    lines = [f"Machine: {machine_line(result['machine'])}. Pipeline with "
             f"{args['augment']} augmentation, {args['image_size']}px, batch "
             f"{args['batch']}; train step: {args['model']}.", "",
             TABLE, "|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['pipeline_img_s']:,.0f} | {r['train_step_img_s']:,.0f} "
              f"| {r['headroom']:.0f}× |" for r in result["rows"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--augment", default="light")
    args = parse(parser, markdown, argv)
    if args is None:
        return None
    import keras
    import zoo
    from zoo import data as data_lib
    rows = []
    for source in args.datasets.split(","):
        d = data_lib.load(source, data_dir=args.data_dir if source != "digits" else None,
                          image_size=args.image_size, batch_size=args.batch,
                          augment=args.augment)
        for _ in d.train:          # first epoch fills the cache
            pass
        n, start = 0, time.perf_counter()
        for i, (x, _) in enumerate(d.train.repeat()):
            n += len(x)
            if i + 1 >= args.batches:
                break
        pipe = n / (time.perf_counter() - start)
        model = zoo.create_model(args.model, num_classes=d.info.num_classes,
                                 input_shape=d.info.image_shape)
        model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        x, y = next(iter(d.train))
        x, y = np.asarray(x), np.asarray(y)
        model.train_on_batch(x, y)
        steps = max(3, args.batches // 5)
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        step = steps * len(x) / (time.perf_counter() - start)
        rows.append({"dataset": source, "pipeline_img_s": pipe, "train_step_img_s": step,
                     "headroom": pipe / step})
    result = {"machine": machine(), "args": vars(args), "rows": rows}
    print(markdown(result))
    dump(args.json, result)
    return rows


if __name__ == "__main__":
    main()
