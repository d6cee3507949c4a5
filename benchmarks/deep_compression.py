"""The `deep` compression preset on three zoo models trained here in float32
on Fashion-MNIST, the sparsity/cluster curve it was chosen from, and int8
LiteRT latency against float LiteRT and Keras.

    python benchmarks/deep_compression.py [--models resnet20,mobilenet_v2_050_cifar,alexnet_cifar]
        [--train-epochs 4] [--limit N] [--sweep resnet20]
        [--variants "prune=0.9,clusters=16;clusters=32;..."]
        [--out runs/deep] [--json out.json]

1. Each model is trained from scratch with `zoo train NAME --dataset
   fashion_mnist --epochs E` (float32; resumable, reused when finished).
2. `compression.compress(model.keras, data, preset="deep")` with default
   budgets: fine-tuning on the training images the model was trained on
   (or the first `--limit`), tested on
   the full 10,000-image test split. Sizes are against the float32 `.keras`
   file as trained (without optimizer state).
3. Then, for `--sweep` models (must be among `--models`): the same chain
   with each of `--variants` changed (`;` between variants, `,` between the
   options of one): by default sparsity 50/70/90 % (16 clusters), 8/16/32
   clusters (80 %), and a 3,000-step pruning budget (`prune_steps`: the
   default pruning budget, compression.finetune.DEFAULT_STEPS["prune"],
   for that run; on all 54,000 images the deep preset's four passes, 3,376
   steps, are more, so it matters only with --limit), for the curve.

A folder whose report.json was written with the same options (and the
same default learning rate) is reused,
so an interrupted run restarts where it stopped.

Needs /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
Prints the machine and markdown tables; writes sweep.png (accuracy against
gzip size, every variant, Pareto front marked).
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
FASHION = "/usr/share/datasets/fashion-mnist"
VARIANTS = ("prune_steps=3000,clusters=16;prune=0.9,clusters=16;prune=0.7,clusters=16;"
            "prune=0.5,clusters=16;clusters=16;clusters=32")


def parse_variants(text):
    """"prune=0.9;clusters=8,distribution=erk" -> [{"prune": 0.9}, {...}]."""
    def value(key, text):
        if key in ("clusters", "prune_steps"):
            return int(text)
        return text if key == "distribution" else float(text)

    variants = []
    for item in filter(None, text.split(";")):
        pairs = (kv.split("=") for kv in item.split(","))
        variants.append({k.strip(): value(k.strip(), v.strip()) for k, v in pairs})
    return variants


def train_float(name, args, out):
    from zoo import training
    config = training.TrainConfig(model=name, dataset="fashion_mnist",
                                  data_dir=args.data_dir, epochs=args.train_epochs)
    metrics = training.train(config, out / name / "float", verbose=0,
                             reuse_finished=True)
    return out / name / "float" / "model.keras", metrics


def deep(path, data, out, args, prune_steps=None, **override):
    """The deep preset with `override`; `prune_steps` replaces the default
    pruning budget for this run. A finished report with the same options
    and budget is reused."""
    import json
    from compression import compress, finetune, presets
    done = out / "report.json"
    if done.exists() and (out / "budget.json").exists():
        report = json.loads(done.read_text())
        wanted = dict(presets.resolve("deep", **override),
                      learning_rate=finetune.LEARNING_RATE)
        same = all(report["options"].get(k) == v for k, v in wanted.items())
        if same and json.loads((out / "budget.json").read_text()) == prune_steps:
            print(f"reusing {done}", flush=True)
            return report
    default = finetune.DEFAULT_STEPS["prune"]
    finetune.DEFAULT_STEPS["prune"] = prune_steps or default
    try:
        report = compress(str(path), data, out=out, preset="deep",
                          latency_runs=args.latency_runs, **override)
    finally:
        finetune.DEFAULT_STEPS["prune"] = default
    (out / "budget.json").write_text(json.dumps(prune_steps))
    return report


def row(name, label, report):
    f, lite, c = (report["variants"][0], report["variants"][1],
                  report["variants"][-1])
    return {"model": name, "variant": label, "float_accuracy": f["accuracy"],
            "accuracy": c["accuracy"], "change_points": 100 * (c["accuracy"] - f["accuracy"]),
            "float_keras_bytes": f["size_bytes"], "float_gzip": f["gzip_bytes"],
            "gzip": c["gzip_bytes"], "xz": c["xz_bytes"],
            "gzip_x": f["gzip_bytes"] / c["gzip_bytes"], "xz_x": f["xz_bytes"] / c["xz_bytes"],
            "keras_ms": f["latency_ms"], "float_litert_ms": lite["latency_ms"],
            "int8_litert_ms": c["latency_ms"], "wall_time_s": report["wall_time_s"]}


# The table of docs/benchmarks.md ("Deep compression"), as printed here
# (tests/test_benchmarks.py checks that the doc has this header).
TABLE = ("| model | float32 acc | deep acc | change (points) | float .keras (gzip) | "
         "deep .tflite (gzip) | × smaller (gzip) | × smaller (xz) | Keras | "
         "float LiteRT | int8 LiteRT |")


def markdown(result) -> str:
    """docs/benchmarks.md's table: one row per model and variant (a variant
    other than the preset's defaults is named after the model)."""
    lines = [f"Machine: {_common['machine_line'](result['machine'])}.", "",
             TABLE, "|---" * TABLE.count(" | ") + "|---|"]
    for r in result["rows"]:
        name = r["model"] if r["variant"].startswith("deep (") else \
            f"{r['model']} ({r['variant']})"
        lines.append(f"| {name} | {r['float_accuracy']:.4f} | {r['accuracy']:.4f} | "
                     f"{r['change_points']:+.2f} | {r['float_gzip'] / 1e3:,.1f} kB | "
                     f"{r['gzip'] / 1e3:,.1f} kB | {r['gzip_x']:.1f}× | {r['xz_x']:.1f}× | "
                     f"{r['keras_ms']:.2f} ms | {r['float_litert_ms']:.2f} ms | "
                     f"{r['int8_litert_ms']:.2f} ms |")
    return "\n".join(lines)

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,mobilenet_v2_050_cifar,alexnet_cifar")
    parser.add_argument("--data-dir", default=FASHION)
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--limit", type=int,
                        help="training images used for fine-tuning (default: "
                             "all, the 54,000 the float model was trained on)")
    parser.add_argument("--sweep", default="resnet20",
                        help="models whose sparsity/cluster curve is measured")
    parser.add_argument("--variants", default=VARIANTS,
                        help="options changed in the sweep (see above)")
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--out", default="runs/deep")
    args = _common["parse"](parser, markdown)
    if args is None:
        return
    from compression import report as rep
    from zoo import data as data_lib
    print(_common["machine"](), flush=True)
    out, rows, trained = Path(args.out), [], {}
    data = data_lib.load("fashion_mnist", data_dir=args.data_dir, batch_size=64,
                         limit=args.limit)
    for name in args.models.split(","):
        path, metrics = train_float(name, args, out)
        print(f"{name}: float32 test accuracy {metrics['test_accuracy']:.4f}", flush=True)
        trained[name] = path, deep(path, data, out / name / "deep", args)
        rows.append(row(name, "deep (preset defaults)", trained[name][1]))
        print(rows[-1], flush=True)
    curve = []
    for name in filter(None, args.sweep.split(",")):
        path, report = trained[name]
        curve += [dict(report["variants"][0], name=f"{name} float32"),
                  dict(report["variants"][-1], name=f"{name} deep (defaults)")]
        for override in parse_variants(args.variants):
            label = ", ".join(f"{k} {v}" for k, v in override.items())
            swept = deep(path, data, out / name / label.replace(" ", "_"), args, **override)
            rows.append(row(name, label, swept))
            curve.append(dict(swept["variants"][-1], name=f"{name} {label}"))
            print(rows[-1], flush=True)
        rep.plot(out / f"sweep_{name}.png", [c for c in curve if c["name"].startswith(name)],
                 title=f"{name}: deep chain, sparsity and clusters")
    result = {"machine": _common["machine"](), "args": vars(args), "rows": rows,
              "curve": curve}
    print("\n" + markdown(result))
    _common["dump"](args.json, result)


if __name__ == "__main__":
    main()
