"""`zoo demo`: the main job end to end on the embedded digits data.

Trains a small zoo model (ResNet-20 at 16×16), evaluates it on the held-out
test split, runs a short hyperparameter search and a compression pass, and
writes ``report.md`` and ``demo.json`` into the output folder.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from zoo.errors import InputError, ZooError
from zoo.io import check_writable_dir, write_json, write_text

MARKER = "demo.json"
# What the README promises for the full demo (not --quick).
MIN_ACCURACY = 0.95


class DemoBelowTarget(ZooError):
    """The demo ran but its model missed the accuracy the README promises."""


def _fresh(out: Path):
    """Reuses `out` only if it is empty or a previous demo's folder."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError(f"{out} exists and is not a zoo demo folder; choose "
                         "another --out (nothing was changed).")
    for sub in ("train", "tune", "compress"):
        shutil.rmtree(out / sub, ignore_errors=True)
    check_writable_dir(out)
    write_json(out / MARKER, {"status": "running"})


def run(out="zoo-demo", *, epochs=12, quick=False) -> str:
    """Runs the demo; returns the report text (also in out/report.md)."""
    from zoo.training import TrainConfig, train
    out = Path(out)
    _fresh(out)
    start = time.perf_counter()
    config = TrainConfig(
        model="resnet20", dataset="digits", image_size=16, epochs=1 if quick else epochs,
        batch_size=64, optimizer="adam", lr=3e-3, schedule="cosine",
        limit=256 if quick else None)
    metrics = train(config, out / "train", verbose=0 if quick else 2)
    sections = [
        "# zoo demo",
        "",
        f"Model `resnet20` ({metrics['params']:,} parameters) trained on "
        f"scikit-learn digits resized to 16×16 for {metrics['epochs']} epochs "
        f"(Adam, cosine schedule) in {metrics['wall_time_s']:.0f} s.",
        "",
        f"**Test accuracy: {metrics['test_accuracy']:.4f}** on "
        f"{metrics['dataset']['num_test']} held-out images "
        f"(loss {metrics['test_loss']:.4f}).",
        "",
        f"Files: `{out / 'train' / 'model.keras'}`, `history.csv`, "
        "`metrics.json`, `curves.png`.",
    ]
    summary = {"status": "done", "train": {k: metrics[k] for k in
                                           ("test_accuracy", "test_loss", "params",
                                            "epochs", "wall_time_s")}}
    for name, step in _extra_steps():
        text, result = step(out, metrics, quick)
        sections += ["", text]
        summary[name] = result
    summary["wall_time_s"] = round(time.perf_counter() - start, 1)
    sections += ["", f"Total time: {summary['wall_time_s']:.0f} s."]
    report = "\n".join(sections) + "\n"
    write_text(out / "report.md", report)
    write_json(out / MARKER, summary)
    if not quick and metrics["test_accuracy"] < MIN_ACCURACY:
        raise DemoBelowTarget(
            f"the demo's test accuracy {metrics['test_accuracy']:.4f} is below the "
            f"{MIN_ACCURACY} the README promises; see {out / 'report.md'}.")
    return report


def _extra_steps():
    """The search and compression steps (imported here: `zoo` itself never
    imports tuning or compression)."""
    from compression import demo_step as compress_step
    from tuning import demo_step as tune_step
    return [("tune", tune_step), ("compress", compress_step)]


def load_summary(out) -> dict:
    return json.loads((Path(out) / MARKER).read_text())
