"""Peak memory of `zoo.data.load("folder:...")` on a large image folder: one
full pass over the training pipeline (decode, resize, augment, batch), the
way `zoo train` reads it (default flags), in a fresh process.

    python benchmarks/folder_memory.py [--images 50000] [--image-size 256 64 32]
        [--folder /tmp/zoo_folder50k] [--json out.json]

The folder (10 class sub-folders of random 32×32 RGB PNGs) is written once
and reused. Sizes whose decoded training set fits zoo.data's
FOLDER_CACHE_BYTES are held in memory; larger ones are read from disk on
every pass. Prints the machine and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

common = runpy.run_path(str(Path(__file__).with_name("common.py")))

ONE_PASS = """
import json, resource, sys, time
from zoo import data
start = time.perf_counter()
d = data.load("folder:" + sys.argv[1], image_size=int(sys.argv[2]), batch_size=64)
batches = sum(1 for _ in d.train)
print(json.dumps({"batches": batches, "train_images": d.info.num_train,
                  "seconds": round(time.perf_counter() - start, 1),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def make_folder(folder: Path, images: int):
    from PIL import Image
    marker = folder / f".complete_{images}"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    for i in range(images):
        cls = folder / f"class_{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            cls / f"{i:06d}.png")
    marker.touch()


# The table of docs/training.md, as printed here.
TABLE = "| image size | train images | decoded size | held in memory | peak RSS | one pass |"


def markdown(result) -> str:
    lines = [f"Machine: {common['machine_line'](result['machine'])}; "
             f"{result['args']['images']:,} random PNGs in 10 class folders.", "",
             TABLE, "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        cached = "yes" if r["decoded_train_mb"] <= 512 else "no (read from disk)"
        lines.append(f"| {r['image_size']}² | {r['train_images']:,} | "
                     f"{r['decoded_train_mb']:,} MB | {cached} | {r['peak_rss_mb']:,} MB | "
                     f"{r['seconds']:.0f} s |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50000)
    parser.add_argument("--image-size", type=int, nargs="+", default=[256, 64, 32])
    parser.add_argument("--folder", default="/tmp/zoo_folder50k")
    args = common["parse"](parser, markdown)
    if args is None:
        return
    print(common["machine"](), flush=True)
    start = time.perf_counter()
    make_folder(Path(args.folder), args.images)
    print(f"folder ready in {time.perf_counter() - start:.0f} s", flush=True)
    rows = []
    for size in args.image_size:
        done = subprocess.run([sys.executable, "-c", ONE_PASS, args.folder, str(size)],
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        row = {"image_size": size, **json.loads(done.stdout.strip().splitlines()[-1])}
        row["decoded_train_mb"] = row["train_images"] * size * size * 3 // 2**20
        print(row, flush=True)
        rows.append(row)
    result = {"machine": common["machine"](), "args": vars(args), "rows": rows}
    print(markdown(result))
    common["dump"](args.json, result)

if __name__ == "__main__":
    main()
