"""What a finished search writes and prints: trials.csv, the best trial
(among the trials that ran to the end), best_hyperparameters.json, the
plots, the Pareto front of several objectives, and `report(out)`."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

from . import cost
from . import plan as plan_lib
from zoo.errors import InputError
from zoo.io import atomic_path, write_json, write_text


def _trial_rows(tuner, out):
    oracle = tuner.oracle
    rows = []
    hp_names = sorted({n for t in oracle.trials.values() for n in t.hyperparameters.values})
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        info_path = Path(out) / "trial_info" / f"{trial_id}.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        status = str(trial.status)
        planned = info.get("planned_epochs") or math.inf
        if info.get("pruned") and status == "COMPLETED" \
                and ((info.get("epochs_run") or 0) < planned
                     or (info.get("folds_run") or 0) < (info.get("folds") or 1)):
            status = "PRUNED"
        row = {"trial_id": trial_id, "status": status,
               "score": trial.score, "score_se": info.get("score_se"),
               "scored": info.get("scored"), "folds_run": info.get("folds_run"),
               "epochs_run": info.get("epochs_run"),
               "wall_time_s": info.get("wall_time_s"), "steps_run": info.get("steps_run"),
               "params": info.get("params"),
               "latency_ms": info.get("latency_ms"), "rss_mb": info.get("rss_mb"),
               "prune_error": info.get("prune_error"),
               "fold_scores": info.get("fold_scores"),
               "fold_scored": info.get("fold_scored"), "raced": info.get("raced")}
        for n in hp_names:
            row[n] = trial.hyperparameters.values.get(n)
        rows.append(row)
    return rows, hp_names


def best_of(oracle, rows, direction):
    """The best trial (see `choose_best`)."""
    return choose_best(oracle, rows, direction)[0]


def choose_best(oracle, rows, direction, objective="val_accuracy"):
    """(trial, note): the best trial among those that ran to the end (not
    PRUNED: a pruned trial's score covers fewer epochs or folds), or
    keras-tuner's best when every scored trial was pruned; (None, None)
    when none has a score.

    The one-standard-error rule: the trial with every knob at its default
    (the search's first, `zoo train`'s configuration where the space
    allows it) is kept unless the best trial beats it by more than the
    standard error of the best's score; `note` then says so (else None).
    Where the trials raced over the folds (tuning.plan), the two are
    compared on the folds after the first: a trial went on past its first
    fold only with one of the best first-fold scores so far, so that
    score was chosen for being high, and counting it would favour every
    challenger over the first trial, which always goes on."""
    done = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    if not done:
        best = oracle.get_best_trials(1)
        return (best[0] if best else None), None
    pick = max if direction == "max" else min
    best = pick(done, key=lambda r: r["score"])
    first = _defaults_row(oracle, done)
    if first is None or first is best:
        return oracle.trials[best["trial_id"]], None
    (b, f, se), where = _compared(best, first, objective)
    if se is None or (b - f if direction == "max" else f - b) > se:
        return oracle.trials[best["trial_id"]], None
    note = (f"trial {first['trial_id']} (every knob at its default) kept: trial "
            f"{best['trial_id']} scored {b:.4f}{where}, within its standard "
            f"error ({se:.4f}) of {f:.4f} (one-standard-error rule)")
    return oracle.trials[first["trial_id"]], note


def _compared(best, first, objective):
    """((best's score, first's score, best's standard error), where): on
    the folds after the first where both raced over the same folds, else
    the trials' scores."""
    folds = [r.get("fold_scores") or [] for r in (best, first)]
    counts = [r.get("fold_scored") or [] for r in (best, first)]
    if not (best.get("raced") and first.get("raced") and len(folds[0]) > 1
            and len(folds[0]) == len(folds[1]) == len(counts[0]) == len(counts[1])):
        return (best["score"], first["score"], best.get("score_se")), ""
    later = [statistics.fmean(f[1:]) for f in folds]
    se = plan_lib.standard_error(folds[0][1:], sum(counts[0][1:]), objective)
    return (later[0], later[1], se), (f" on the folds after the first (which raced "
                                      f"the trials; {sum(counts[0][1:])} images)")


def _defaults_row(oracle, rows):
    """The row of the trial that ran every active knob at its default, or None."""
    get_space = getattr(oracle, "get_space", None)
    if get_space is None:
        return None
    space = get_space()
    defaults = {hp.name: hp.default for hp in space.space if space.is_active(hp)}
    for row in rows:
        if oracle.trials[row["trial_id"]].hyperparameters.values == defaults:
            return row
    return None


def pareto_front(points, directions):
    """Indices of the non-dominated points.

    Args:
        points: list of tuples of objective values.
        directions: "max"/"min" per objective.
    """
    sign = [1 if d == "max" else -1 for d in directions]
    scored = [tuple(s * v for s, v in zip(sign, p)) for p in points]
    front = []
    for i, p in enumerate(scored):
        dominated = any(all(q[k] >= p[k] for k in range(len(p))) and q != p
                        for j, q in enumerate(scored) if j != i)
        if not dominated:
            front.append(i)
    return front


def _write_csv(path, rows, fields):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _plots(rows, hp_names, objective, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in rows if r["score"] is not None]
    if not done:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for status, marker in (("COMPLETED", "o"), ("PRUNED", "x")):
        pts = [(int(r["trial_id"]), r["score"]) for r in done if r["status"] == status]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, label=status.lower())
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "objective_by_trial.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    shown = [n for n in hp_names if any(r.get(n) is not None for r in done)]
    if not shown:
        return
    cols = min(4, len(shown))
    rows_n = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.6 * rows_n),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), shown):
        pts = [(r[name], r["score"]) for r in done if r.get(name) is not None]
        xs = [p[0] for p in pts]
        if all(isinstance(x, (int, float)) for x in xs):
            ax.scatter(xs, [p[1] for p in pts])
            if name in ("learning_rate", "l1", "l2", "weight_decay", "epsilon") \
                    and min(xs) > 0:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.scatter([labels.index(str(x)) for x in xs], [p[1] for p in pts])
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out / "objective_by_hyperparameter.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def export(tuner, out, objectives):
    """trials.csv, best_hyperparameters.json, plots, pareto."""
    out = Path(out)
    rows, hp_names = _trial_rows(tuner, out)
    fields = ["trial_id", "status", *hp_names, "score", "score_se", "scored",
              "folds_run", "epochs_run", "steps_run", "wall_time_s", "params", "latency_ms",
              "rss_mb", "prune_error"]
    _write_csv(out / "trials.csv", rows, fields)
    result = {"trials": rows, "hp_names": hp_names,
              "objective": [o for o, _ in objectives]}
    best_trial, note = choose_best(tuner.oracle, rows, objectives[0][1],
                                   objectives[0][0])
    if best_trial is not None:
        values = best_trial.hyperparameters.values
        write_json(out / "best_hyperparameters.json",
                   {"trial_id": best_trial.trial_id, "score": best_trial.score,
                    "objective": objectives[0][0], "values": values, "note": note})
        result.update(best_hyperparameters=values,
                      best_score=best_trial.score, best_trial=best_trial.trial_id)
    done = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    first = _defaults_row(tuner.oracle, done)
    if first is not None:
        result["first_trial"] = first["trial_id"]
    _plots(rows, hp_names, objectives[0][0], out)
    if len(objectives) > 1:
        key = {"params": "params", "latency": "latency_ms"}
        usable = [r for r in rows if r["score"] is not None
                  and all(r.get(key.get(o, "score")) is not None for o, _ in objectives)]
        points = [tuple(r[key.get(o, "score")] if o in key else r["score"]
                        for o, _ in objectives) for r in usable]
        front = [usable[i] for i in pareto_front(points, [d for _, d in objectives])]
        _write_csv(out / "pareto.csv", front, fields)
        _pareto_plot(usable, front, objectives, key, out)
        result["pareto"] = [r["trial_id"] for r in front]
    return result


def _pareto_plot(rows, front, objectives, key, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (o1, _), (o2, _) = objectives[0], objectives[1]
    x = lambda r: r[key[o2]] if o2 in key else r["score"]  # noqa: E731
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter([x(r) for r in rows], [r["score"] for r in rows], label="trials")
    f = sorted(front, key=x)
    ax.plot([x(r) for r in f], [r["score"] for r in f], "r-o", label="Pareto front")
    ax.set_xlabel(o2)
    ax.set_ylabel(o1)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out / "pareto.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def report(out) -> str:
    """The summary of a finished search folder, as text."""
    out = Path(out)
    if not (out / "trials.csv").is_file():
        raise InputError(f"{out} holds no finished search (trials.csv missing).")
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    lines = [f"{len(rows)} trials in {out}"]
    budget = cost.describe(out)
    if budget:
        lines.append(budget)
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines.append(", ".join(f"{k.lower()}: {v}" for k, v in sorted(counts.items())))
    best_path = out / "best_hyperparameters.json"
    if best_path.is_file():
        best = json.loads(best_path.read_text())
        if best.get("score") is None:
            lines.append("no trial finished with a score: every trial failed "
                         f"(their errors are in {out / 'trials.csv'})")
        else:
            lines.append(f"best trial {best['trial_id']}: {best['objective']} = "
                         f"{best['score']:.4f}")
            if best.get("note"):
                lines.append(best["note"])
        for k, v in sorted(best["values"].items()):
            lines.append(f"  {k} = {v}")
    if (out / "pareto.csv").is_file():
        with open(out / "pareto.csv") as f:
            front = [r["trial_id"] for r in csv.DictReader(f)]
        lines.append(f"Pareto front: trials {', '.join(front)}")
    final_path = out / "final.json"
    if final_path.is_file():
        final = json.loads(final_path.read_text())
        lines.append(f"best configuration retrained on train + validation: test "
                     f"accuracy {final['best']['test_accuracy']:.4f} "
                     f"({final['best']['optimizer_steps']} optimizer steps) -> "
                     f"{out / 'best_model.keras'}")
        if final.get("default"):
            lines.append(f"zoo train defaults on the same data: test accuracy "
                         f"{final['default']['test_accuracy']:.4f}")
    if (out / "report.md").is_file():
        lines.append(f"trial scores with their standard errors: {out / 'report.md'}")
    return "\n".join(lines)
