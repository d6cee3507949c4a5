"""`zoo demo`: the main job end to end on the embedded digits data.

Trains a small zoo model (ResNet-20; the 8×8 digits at the recipe's floor,
16×16), evaluates it on the held-out test split, runs a short
hyperparameter search and a compression pass, and writes ``report.md`` and
``demo.json`` into the output folder.
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


def train_config(quick, epochs=None):
    """`zoo train resnet20 --dataset digits [--epochs E]`: the recipe's
    defaults (zoo.recipe; the 8×8 digits at its image-size floor, 16×16);
    one epoch of 256 images with `quick`."""
    from zoo.training import TrainConfig
    return TrainConfig(model="resnet20", dataset="digits",
                       epochs=1 if quick else epochs, limit=256 if quick else None)


def _size(metrics) -> str:
    h, w = metrics["dataset"]["image_shape"][:2]
    return f"{h}×{w}"


def run(out="zoo-demo", *, epochs=None, quick=False) -> str:
    """Runs the demo; returns the report text (also in out/report.md)."""
    from zoo.training import train
    out = Path(out)
    _fresh(out)
    start = time.perf_counter()
    config = train_config(quick, epochs)
    metrics = train(config, out / "train", verbose=0 if quick else 2)
    sections = [
        "# zoo demo",
        "",
        f"Model `resnet20` ({metrics['params']:,} parameters) trained on "
        f"scikit-learn digits resized to {_size(metrics)} for {metrics['epochs']} epochs "
        f"({metrics['optimizer_steps']:,} optimizer steps, the default recipe: "
        f"Adam, {config.schedule} schedule, {config.augmentation} augmentation, "
        f"{metrics['selection']} epoch kept) in {metrics['wall_time_s']:.0f} s.",
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
    """The search and compression steps (the demo is the application layer:
    it may import tuning and compression; the library modules of zoo never
    do)."""
    return [("tune", _tune_step), ("compress", _compress_step)]


def _tune_step(out, metrics, quick):
    """A short random search over the focused space, then the best
    configuration retrained and tested."""
    from zoo.tuning import search
    # The demo's own short budgets: 100-step trials, a 1,000-step final run.
    budget = dict(epochs=1, folds=1, final_epochs=1, limit=256) if quick else \
        dict(trial_steps=100, final_steps=1000)
    result = search("resnet20", "digits", tuner="random", max_trials=2 if quick else 3,
                    out=Path(out) / "tune", compare_default=False,
                    space={"augment": None, "label_smoothing": None}, **budget)
    best = result.get("best_hyperparameters", {})
    text = (f"Search (random, {len(result['trials'])} trials): best validation "
            f"accuracy {result.get('best_score', float('nan')):.4f} with optimizer "
            f"{best.get('optimizer')} at learning rate {best.get('learning_rate', 0):.2g}; "
            f"retrained on train + validation: test accuracy "
            f"{result.get('test_accuracy', float('nan')):.4f}. "
            f"Report: `{Path(out) / 'tune' / 'report.md'}`.")
    return text, {"best_score": result.get("best_score"), "best": best,
                  "test_accuracy": result.get("test_accuracy")}


def _compress_step(out, metrics, quick):
    """50 % pruning (300 steps) + int8 of the demo model."""
    from zoo.compression import compress
    report = compress(Path(out) / "train" / "model.keras", "digits",
                      out=Path(out) / "compress", prune=0.5, quantize="int8",
                      steps=20 if quick else 300, latency_runs=10 if quick else 30)
    base, final = report["variants"][0], report["variants"][-1]
    text = (f"Compression (50 % pruning + int8 LiteRT): accuracy "
            f"{base['accuracy']:.4f} → {final['accuracy']:.4f}, gzip size "
            f"{base['gzip_bytes'] / 1e3:.0f} kB → {final['gzip_bytes'] / 1e3:.0f} kB "
            f"({base['gzip_bytes'] / final['gzip_bytes']:.1f}× smaller). "
            f"Report: `{Path(out) / 'compress' / 'report.md'}`.")
    return text, {"float": base, "compressed": final}


def load_summary(out) -> dict:
    return json.loads((Path(out) / MARKER).read_text())
