"""A run's history: the rows of Keras' CSV log, `history.csv` and the
loss and accuracy curves (`curves.png`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from zoo.io import atomic_path, write_text


def history_rows(log_path: Path) -> list[dict]:
    if not log_path.is_file():
        return []
    rows = {}
    with open(log_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch", "").isdigit():
                rows[int(row["epoch"])] = row   # a resumed epoch replaces the old row
    rows = [rows[k] for k in sorted(rows)]
    # Keras' CSVLogger writes "NA" for a metric an epoch did not produce
    # (validation metrics of a run without a validation split).
    empty = {k for k in (rows[0] if rows else {})
             if all(r.get(k) in (None, "", "NA") for r in rows)}
    return [{k: v for k, v in r.items() if k not in empty} for r in rows]


def write_history(rows, path):
    if not rows:
        return
    buf = io.StringIO()
    fields = list(rows[0].keys())
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        row = dict(row)
        row["epoch"] = int(row["epoch"]) + 1     # 1-based in the user's file
        writer.writerow(row)
    write_text(path, buf.getvalue())


def plot_curves(rows, path):
    """loss and accuracy (train and validation) per epoch as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            key = prefix + metric
            values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
            if len(values) == len(epochs):
                ax.plot(epochs, values, style, marker="o", ms=3,
                        label="validation" if prefix else "train")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
