"""Compression of the shipped resnet20.fashion_mnist checkpoint on the
Fashion-MNIST test split: float, pruned 80 % + int8, QAT int8.

    python benchmarks/compression.py [--data-dir /usr/share/datasets/fashion-mnist]
        [--epochs 2] [--limit 20000] [--out runs/compression] [--json out.json]

Prints one table per recipe (from each run's report.md) and a summary with
gzip compression against the float .keras file.  `--dataset digits` with a
tiny `--limit` is the smoke-test setting.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

# Loaded by path; it also takes this folder off sys.path (see common.py).
_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
dump, machine, parse, machine_line = (
    _common[k] for k in ("dump", "machine", "parse", "machine_line"))

RECIPES = {
    "prune80_int8": dict(prune=0.8, quantize="int8"),
    "qat_int8": dict(quantize="qat"),
    "prune80_qat": dict(prune=0.8, quantize="qat"),
}


# The table of docs/benchmarks.md, as printed here.
TABLE = ("| recipe | float acc | compressed acc | Δ points | float .keras gzip | .tflite gzip "
         "| × smaller | Keras float latency | LiteRT int8 latency |")


def markdown(result) -> str:
    args = result["args"]
    lines = [f"Machine: {machine_line(result['machine'])}. Fine-tuning: {args['epochs']} "
             f"epochs at {args['lr']:g} on {args['limit']:,} images.", "",
             TABLE, "|---" * TABLE.count(" | ") + "|---|"]
    for name, variants in result["results"].items():
        f, c = variants[0], variants[-1]
        lines.append(f"| {name} | {f['accuracy']:.4f} | {c['accuracy']:.4f} | "
                     f"{100 * (c['accuracy'] - f['accuracy']):+.2f} | "
                     f"{f['gzip_bytes'] / 1e3:.0f} kB | {c['gzip_bytes'] / 1e3:.0f} kB | "
                     f"{f['gzip_bytes'] / c['gzip_bytes']:.1f}× | {f['latency_ms']:.2f} ms | "
                     f"{c['latency_ms']:.2f} ms |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=20000,
                        help="training images used for fine-tuning")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--lr", type=float, default=1e-4,
                        help="fine-tuning learning rate of each TF-MOT step")
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--out", default="runs/compression")
    args = parse(parser, markdown, argv)
    if args is None:
        return None
    import zoo
    from compression import compress
    from zoo import data as data_lib
    model = zoo.create_model("resnet20", weights="fashion_mnist")
    data = data_lib.load(args.dataset,
                         data_dir=args.data_dir if args.dataset != "digits" else None,
                         image_size=model.input_shape[1:3], channels=1,
                         batch_size=128, limit=args.limit)
    results = {}
    for name in args.recipes.split(","):
        report = compress(model, data, out=Path(args.out) / name, epochs=args.epochs,
                          learning_rate=args.lr,
                          latency_runs=args.latency_runs, **RECIPES[name])
        results[name] = report
        print(f"\n## {name}\n")
        print((Path(args.out) / name / "report.md").read_text().split("\n", 2)[2])
    result = {"machine": machine(), "args": vars(args),
              "results": {k: v["variants"] for k, v in results.items()}}
    print(markdown(result))
    dump(args.json, result)
    return results


if __name__ == "__main__":
    main()
