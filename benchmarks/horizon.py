"""Does a ranking made on short runs hold on long ones? Two configurations,
`zoo train`'s and a challenger, each trained as `zoo train` with N optimizer
steps on the training images of the second of three stratified folds of a
small set's training images (the fold tuning.confirm uses) and scored on
that fold's images, for several N (on a 500-image set tuning.confirm
trains 667 steps there: the final run's 1,000 times the fold's two thirds
of the images). Measured for docs/tuning.md
("Confirmation"); the challenger below is what default `zoo tune`'s trials
chose on rgb500 with seed 0 (docs/tables/small_data_erasing.json).

    python benchmarks/horizon.py --dataset rgb500 --steps 500,667,1000 \\
        --challenger "optimizer=adamw,lr=0.00741319961466101,label_smoothing=0.0,weight_decay=0.0011329163409865683" \\
        --out runs/horizon --json docs/tables/horizon_rgb500.json

Needs /usr/share/datasets/fashion-mnist for the Fashion-MNIST sets (see
benchmarks/small_data.py, which builds them).
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import numpy as np

common = runpy.run_path(str(Path(__file__).with_name("common.py")))
small_data = runpy.run_path(str(Path(__file__).with_name("small_data.py")))

TABLE = ("| step floor (`min_steps`) | `zoo train`'s configuration | challenger | "
         "challenger − `zoo train`'s |")


def fold_npz(dataset, out, seed) -> Path:
    """The set's training images split as fold (1, 3) of the search's
    seeded stratified partition: its training part as x_train, its
    validation part as x_test."""
    from zoo.splits import fold_split
    whole = out / f"{dataset}.npz"
    if not whole.is_file():
        small_data["build"](dataset, whole)
    d = np.load(whole)
    x_train, y_train, x_val, y_val = fold_split(d["x_train"], d["y_train"], (1, 3), seed)
    path = out / f"{dataset}_f1.npz"
    if not path.is_file():
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_val, y_test=y_val)
    return path


def markdown(result) -> str:
    lines = [f"resnet20 on {result['args']['dataset']}, fold 2 of 3 (seed "
             f"{result['args']['seed']}): {result['rows'][0]['scored']} images score "
             f"each run. Challenger: {result['args']['challenger']}. Machine: "
             f"{common['machine_line'](result['machine'])}.", "",
             TABLE, "|---" * TABLE.count(" | ") + "|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['steps']:,} | {r['first']:.4f} | {r['challenger']:.4f} | "
                     f"{r['challenger'] - r['first']:+.4f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="rgb500",
                        help="a set of benchmarks/small_data.py (default %(default)s)")
    parser.add_argument("--steps", default="500,667,1000")
    parser.add_argument("--challenger", default="",
                        help="TrainConfig fields, field=value,...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/horizon")
    args = common["parse"](parser, markdown)
    if args is None:
        return
    from zoo import training
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    npz = fold_npz(args.dataset, out, args.seed)
    challenger = small_data["parse_runs"](f"challenger:{args.challenger}")[0][1]
    rows = []
    for steps in map(int, args.steps.split(",")):
        row = {"steps": steps, "seconds": 0.0}
        for name, fields in (("first", {}), ("chal", challenger)):
            metrics = training.train(training.TrainConfig(
                "resnet20", dataset=f"npz:{npz}", min_steps=steps, seed=args.seed,
                **fields), out / f"{args.dataset}_{name}_{steps}", verbose=0,
                reuse_finished=True)
            row["first" if name == "first" else "challenger"] = metrics["test_accuracy"]
            row["seconds"] += metrics["wall_time_s"]
            row["scored"] = metrics.get("test_images") or int(np.load(npz)["y_test"].size)
            print(args.dataset, steps, name, f"{metrics['test_accuracy']:.4f}", flush=True)
        rows.append(row)
    result = {"machine": common["machine"](), "args": vars(args), "rows": rows}
    common["dump"](args.json, result)
    print(markdown(result))


if __name__ == "__main__":
    main()
