"""Does a horizontal flip in the augmentation hurt on images
whose meaning mirroring changes? (issue #27: 0.896 with it, 0.961 without,
one run on a 500-image grayscale set.)

    python benchmarks/flip.py [--seeds 0,1,2] [--train 500]

Data: scikit-learn's digits written to an `.npz` (so no dataset metadata
turns the flip off, as for a user's own array data): a stratified `--train`
images to train on (10 % of them held out for validation, as `zoo train`
does), the other 1,797 − `--train` (1,297 by default) to test on. Rows:
`zoo train resnet20 --dataset npz:…` with default flags but `--augment`:
`none` (the default), `natural` (translation 0.1 and horizontal flip: what
`light` was before issue #27) and `light` (translation 0.1 only). Prints
the machine and a markdown table: mean ± sd over the seeds, each seed's
test accuracy, and the mean wall time.
"""

from __future__ import annotations

import argparse
import runpy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

common = runpy.run_path(str(Path(__file__).with_name("common.py")))
VARIANTS = {"none": "none",
            "natural: translation + flip (light before #27)": "natural",
            "light: translation only (the recipe's)": "light"}


def digits_npz(path, train, seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    xtr, xte, ytr, yte = train_test_split(x, digits.target, train_size=train,
                                          random_state=seed, stratify=digits.target)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return len(xte)


# The table of docs/training.md, as printed here.
TABLE = "| augment | test accuracy, mean ± sd | per seed | wall time |"


def markdown(result) -> str:
    args = result["args"]
    lines = [f"`python benchmarks/flip.py --seeds {args['seeds']} --train {args['train']}`: "
             f"resnet20, {args['train']} digits (npz), {result['test_images']:,} test "
             f"images. Machine: {common['machine_line'](result['machine'])}.", "",
             TABLE, "|---|---|---|---|"]
    for r in result["rows"]:
        s = r["scores"]
        sd = statistics.stdev(s) if len(s) > 1 else 0.0
        lines.append(f"| {r['augment']} | {statistics.mean(s):.4f} ± {sd:.4f} | "
                     f"{' / '.join(f'{v:.4f}' for v in s)} | "
                     f"{statistics.mean(r['seconds']):.0f} s |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train", type=int, default=500)
    args = common["parse"](parser, markdown)
    if args is None:
        return
    from zoo import training
    print(common["machine"](), flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digits.npz"
        n_test = digits_npz(path, args.train)
        for label, augment in VARIANTS.items():
            scores, times = [], []
            for seed in seeds:
                start = time.perf_counter()
                metrics = training.train(training.TrainConfig(
                    "resnet20", dataset=f"npz:{path}", augment=augment, seed=seed),
                    Path(folder) / f"{label[:5]}{seed}", verbose=0)
                times.append(time.perf_counter() - start)
                scores.append(metrics["test_accuracy"])
                print(label, seed, f"{scores[-1]:.4f}", f"{times[-1]:.0f} s", flush=True)
            rows.append({"augment": label, "scores": scores, "seconds": times})
    result = {"machine": common["machine"](), "args": vars(args), "test_images": n_test,
              "rows": rows}
    print(markdown(result))
    common["dump"](args.json, result)

if __name__ == "__main__":
    main()
