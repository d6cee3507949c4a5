"""Training-step and inference throughput of zoo models against
keras.applications, and the share of the machine's matmul peak.

    python benchmarks/throughput.py [--models resnet50,mobilenet_v1_100,...]
        [--size 224] [--batch 16] [--steps 5] [--reps 3]
        [--precision float32[,mixed_bfloat16]] [--jit] [--json out.json]
    python benchmarks/throughput.py --markdown out.json    # its tables again

Every variant (zoo in each --precision, keras.applications in
--ka-precision) is built in one process and measured interleaved (zoo,
keras.applications, zoo, ...) on the same random batch; the table shows
medians, min–max spread and the ratio to keras.applications.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import numpy as np

# Loaded by path; it also takes this folder off sys.path (see common.py).
_common = runpy.run_path(str(Path(__file__).with_name("common.py")))
dump, machine, summary, timed, parse, machine_line = (
    _common[k] for k in ("dump", "machine", "summary", "timed", "parse", "machine_line"))

KA = {
    "resnet50": ("ResNet50", {}),
    "mobilenet_v1_100": ("MobileNet", {"alpha": 1.0}),
    "mobilenet_v2_100": ("MobileNetV2", {"alpha": 1.0}),
    "xception": ("Xception", {}),
}


def matmul_peak(dtype, n=2048, reps=5):
    import keras
    a = keras.ops.cast(np.random.rand(n, n), dtype)
    b = keras.ops.cast(np.random.rand(n, n), dtype)
    keras.ops.matmul(a, b).numpy()
    times = timed(lambda: keras.ops.matmul(a, b).numpy(), reps)
    return 2 * n ** 3 / min(times) / 1e9


def measure(model, x, y, steps, reps, jit):
    import keras
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy",
                  jit_compile=jit)
    model.train_on_batch(x, y)
    model.predict_on_batch(x)

    def train():
        for _ in range(steps):
            model.train_on_batch(x, y)

    def infer():
        for _ in range(steps):
            model.predict_on_batch(x)
    return train, infer


def build(name, impl, shape, classes, precision):
    """A model under `precision` (a model keeps the policy it was built with)."""
    import keras
    import zoo
    keras.mixed_precision.set_global_policy(precision)
    try:
        if impl == "zoo":
            return zoo.create_model(name, input_shape=shape, num_classes=classes)
        cls, kw = KA[name]
        return getattr(keras.applications, cls)(weights=None, input_shape=shape,
                                                 classes=classes, **kw)
    finally:
        keras.mixed_precision.set_global_policy("float32")


# The tables of docs/benchmarks.md, as printed here.
TABLE = ("| model | zoo train img/s | keras.applications train img/s | train ratio | "
         "zoo inference img/s | keras.applications inference img/s | inference ratio |")
TABLE_SETUPS = ("| model | setup | train img/s | vs keras.applications float32 | "
                "train GFLOP/s | share of matmul peak |")


def markdown(result) -> str:
    """The comparison with keras.applications (zoo in the baseline's
    precision, when both were measured) and every variant's row."""
    args, rows = result["args"], result["rows"]
    spread = lambda s: f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})"
    lines = [f"Machine: {machine_line(result['machine'])}; matmul peak fp32 "
             f"{result['peak_gflops']['fp32']:.0f} GFLOP/s, bf16 "
             f"{result['peak_gflops']['bf16']:.0f} GFLOP/s.", ""]
    pairs = [(z, k) for z in rows for k in rows
             if z["impl"] == "zoo" and k["impl"] != "zoo" and z["model"] == k["model"]
             and z["precision"] == k["precision"]]
    if pairs:
        lines += [TABLE, "|---" * TABLE.count(" | ") + "|---|"]
        lines += [f"| {z['model']} | {spread(z['train_img_s'])} | {spread(k['train_img_s'])} "
                  f"| {z['ratio_train']:.2f} | {spread(z['infer_img_s'])} | "
                  f"{spread(k['infer_img_s'])} | {z['ratio_infer']:.2f} |" for z, k in pairs]
        lines.append("")
    lines += [TABLE_SETUPS, "|---" * TABLE_SETUPS.count(" | ") + "|---|"]
    for r in rows:
        setup = f"{r['impl']} {r['precision']}" + (" + XLA" if args["jit"] else "")
        versus = f"{r['ratio_train']:.2f}×" if "ratio_train" in r else "–"
        peak = "fp32" if r["precision"] == "float32" else "bf16"
        lines.append(f"| {r['model']} {args['size']}px b{args['batch']} | {setup} | "
                     f"{r['train_img_s']['median']:.1f} | {versus} | "
                     f"{r['train_gflops']:.0f} | {r['peak_share']:.0%} of {peak} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(KA))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--precision", default="float32",
                        help="one or more, comma-separated: float32, mixed_bfloat16, "
                             "mixed_float16; all are measured interleaved")
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--zoo-only", action="store_true",
                        help="measure zoo models only (any registry name)")
    parser.add_argument("--ka-precision", default="float32",
                        help="precision of the keras.applications models (default "
                             "float32: the baseline the fast path is compared with)")
    args = parse(parser, markdown, argv)
    if args is None:
        return None
    import zoo
    precisions = args.precision.split(",")
    info = machine()
    peak = {"fp32": matmul_peak("float32"), "bf16": matmul_peak("bfloat16")}
    print(f"machine: {info}")
    print(f"matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    rows = []
    rng = np.random.default_rng(0)
    for name in args.models.split(","):
        size = max(args.size, 71) if name == "xception" else args.size
        shape = (size, size, args.channels)
        variants = [("zoo", p) for p in precisions]
        if not args.zoo_only:
            variants.append(("keras.applications", args.ka_precision))
        models = {v: build(name, v[0], shape, args.classes, v[1]) for v in variants}
        x = rng.random((args.batch, *shape), dtype=np.float32)
        y = rng.integers(0, args.classes, args.batch)
        fns = {v: measure(m, x, y, args.steps, 1, args.jit) for v, m in models.items()}
        results = {v: {"train": [], "infer": []} for v in models}
        for _ in range(args.reps):          # interleaved: zoo, ka, zoo, ka, ...
            for v, (train, infer) in fns.items():
                results[v]["train"].append(args.batch * args.steps / timed(train, 1)[0])
                results[v]["infer"].append(args.batch * args.steps / timed(infer, 1)[0])
        macs = zoo.count_macs(models[variants[0]])
        base = ("keras.applications", args.ka_precision)
        for (impl, precision) in models:
            t = summary(results[(impl, precision)]["train"])
            i = summary(results[(impl, precision)]["infer"])
            gflops = 6 * macs * t["median"] / 1e9
            row = {"model": name, "impl": impl, "precision": precision,
                   "train_img_s": t, "infer_img_s": i, "train_gflops": gflops,
                   "peak_share": gflops / peak["fp32" if precision == "float32" else "bf16"]}
            if base in results:
                row["ratio_train"] = t["median"] / summary(results[base]["train"])["median"]
                row["ratio_infer"] = i["median"] / summary(results[base]["infer"])["median"]
            rows.append(row)
        del models, fns
    result = {"machine": info, "peak_gflops": peak, "args": vars(args), "rows": rows}
    print(markdown(result))
    dump(args.json, result)
    return rows


if __name__ == "__main__":
    main()
