"""After the search: the best configuration retrained, and `report.md`.

`retrain` trains the best trial's configuration once more on the training
and validation data together, evaluates it on the test split, and makes that
model `best_model.keras`. The final run is a run of the training recipe
(zoo.recipe: its step floor, and its augmentation when the space did not
set one — trials of a few hundred steps cannot rank augmentation, so the
focused space leaves it to the final run; measured in docs/tuning.md). With `compare_default`, `zoo train`'s default
configuration is trained as `zoo train NAME --dataset D` would train it, so
that the report says what the search bought. Both runs are ordinary
`zoo.training.train` runs in `out/final` and `out/default`: they resume
after a kill and are reused when the search is run again.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from . import cost
from . import spaces
from zoo import training
from zoo.recipe import RECIPE
from zoo.io import atomic_path, write_json, write_text

# The final run is an ordinary run of the recipe (zoo.recipe), on the
# training and validation images together.
FINAL_MIN_STEPS = RECIPE.min_steps
FINAL_AUGMENT = RECIPE.augment
# The search's data options that are TrainConfig fields of the same name.
DATA_FIELDS = ("data_dir", "image_size", "min_image_size", "seed", "limit")

# Hyperparameter name -> TrainConfig field.
_FIELDS = {"optimizer": "optimizer", "learning_rate": "lr", "momentum": "momentum",
           "rho": "rho", "beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon",
           "weight_decay": "weight_decay", "schedule": "schedule",
           "label_smoothing": "label_smoothing", "augment": "augment",
           "batch_size": "batch_size", "dropout": "dropout"}


def train_config(values, model_name, dataset, data_kwargs, **overrides):
    """The TrainConfig of a trial's hyperparameter values (knobs the trial
    did not sample keep `zoo train`'s defaults)."""
    fields = {field: values[name] for name, field in _FIELDS.items()
              if values.get(name) is not None}
    if "batch_size" in fields:
        fields["batch_size"] = int(fields["batch_size"])
    # Architecture knobs: another model, or create_model options that are
    # TrainConfig fields of the same name (width_multiplier).
    name, options = spaces.model_for(model_name, values)
    fields.update(options)
    kind = values.get("regularizer")
    if kind and kind != "none":
        l1, l2 = values.get("l1", 1e-5), values.get("l2", 1e-4)
        fields["regularizer"] = {"l1": f"l1:{l1}", "l2": f"l2:{l2}",
                                 "elastic_net": f"elastic_net:{l1},{l2}"}[kind]
    data = {k: data_kwargs.get(k) for k in DATA_FIELDS}
    data["seed"] = data["seed"] or 0
    data["min_image_size"] = data["min_image_size"] or RECIPE.min_image_size
    return training.TrainConfig(model=name, dataset=dataset, **data,
                                **{**fields, **overrides})


def final_recipe(values, space, *, min_steps=None, augment=None) -> dict:
    """What the final run adds to the best trial's values: its optimizer-step
    floor and its augmentation (the trial's own when the space set
    `augment`, else FINAL_AUGMENT; explicit arguments win)."""
    if augment is None:
        augment = (values.get("augment") if space.get("augment") is not None
                   else FINAL_AUGMENT)
    return {"min_steps": FINAL_MIN_STEPS if min_steps is None else min_steps,
            "augment": augment or "none"}


def retrain(values, *, model_name, dataset, data_kwargs, out, epochs=None,
            recipe=None, compare_default=True, verbose=0) -> dict:
    """Trains the best configuration on train + validation with the final
    budget, writes `best_model.keras` and `final.json`; optionally trains
    `zoo train`'s defaults for comparison.

    Args:
        recipe: `final_recipe`'s overrides (None: `zoo train`'s budget and
            the trial's augmentation).
        epochs: passes over the data instead of the recipe's step floor.

    Returns:
        {"best": metrics of the retrained model, "default": metrics of the
        default configuration or None, "same_as_default": bool}.
    """
    out = Path(out)
    best = train_config(values, model_name, dataset, data_kwargs,
                        validation_split=0.0, epochs=epochs, **(recipe or {}))
    # A search run again whose choice changed (more trials, a confirmation,
    # or none) trains its new choice: reuse_finished replaces a run of
    # another configuration instead of handing back the old model.
    metrics = training.train(best, out / "final", verbose=verbose,
                             reuse_finished=True)
    with atomic_path(out / "best_model.keras") as tmp:
        shutil.copyfile(out / "final" / "model.keras", tmp)
    default = training.TrainConfig(model=model_name, dataset=dataset, epochs=epochs,
                                   **{k: v for k, v in best.to_dict().items()
                                      if k in DATA_FIELDS})
    same = _same_as_default(best, default)
    default_metrics = None
    if compare_default:
        default_metrics = training.train(default, out / "default", verbose=verbose,
                                         reuse_finished=True)
    result = {"best": _summary(metrics), "same_as_default": same, "recipe": recipe,
              "default": None if default_metrics is None else _summary(default_metrics)}
    write_json(out / "final.json", result)
    return result


def _same_as_default(best, default) -> bool:
    """Whether the best configuration is `zoo train`'s default one (trained
    on more data: the retraining also uses the validation split)."""
    a, b = best.to_dict(), default.to_dict()
    a["augment"], b["augment"] = best.augmentation, default.augmentation
    ignore = {"validation_split", "lr", "min_steps", "selection"}
    return all(a[k] == b[k] for k in a if k not in ignore) and \
        best.learning_rate == default.learning_rate


def _summary(metrics) -> dict:
    keep = ("test_accuracy", "test_loss", "params", "epochs", "optimizer_steps",
            "wall_time_s")
    return {k: metrics.get(k) for k in keep} | {"config": metrics.get("config")}


def _fmt(value, spec=".4f"):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def write_report(out, *, rows, hp_names, objective, plan, best, final,
                 confirmation=None):
    """`report.md`: the plan, every trial with its score's uncertainty, the
    best configuration, and its test accuracy beside `zoo train`'s defaults."""
    out = Path(out)
    lines = [f"# Search report: {out.name}", "",
             f"Objective `{objective}`; {plan.describe()}.", ""]
    if final:
        b, d = final["best"], final.get("default")
        lines += ["## Test accuracy", "",
                  "| model | test accuracy | optimizer steps | wall time (s) |",
                  "|---|---|---|---|",
                  f"| best configuration, retrained on train + validation with "
                  f"augmentation {b['config']['augment']} (`best_model.keras`) | {_fmt(b['test_accuracy'])} | "
                  f"{b['optimizer_steps']} | {_fmt(b['wall_time_s'], '.0f')} |"]
        if d:
            lines.append(f"| `zoo train` defaults (same data, the recipe's "
                         f"validation split) | {_fmt(d['test_accuracy'])} | "
                         f"{d['optimizer_steps']} | {_fmt(d['wall_time_s'], '.0f')} |")
        if final.get("same_as_default"):
            lines.append("\nThe best configuration is `zoo train`'s default one.")
        lines.append("")
    if best:
        lines += ["## Best configuration", "",
                  f"Trial {best['trial_id']}: {objective} = {_fmt(best['score'])}", ""]
        if best.get("note"):
            lines += [best["note"][:1].upper() + best["note"][1:] + ".", ""]
        lines += [f"- {k} = {v}" for k, v in sorted(best["values"].items())] + [""]
    shown = [n for n in hp_names if any(r.get(n) is not None for r in rows)]
    lines += ["## Trials", "",
              "Score: the objective after the trial's last epoch, the mean over "
              "folds under cross-validation; ± its standard error (binomial, "
              "over the images that scored it).", "",
              "| trial | status | score | ± | images scored | epochs | "
              + " | ".join(shown) + " |",
              "|" + "---|" * (6 + len(shown))]
    for r in rows:
        cells = [r["trial_id"], r["status"], _fmt(r["score"]), _fmt(r.get("score_se")),
                 _fmt(r.get("scored"), "d"), _fmt(r.get("epochs_run"), "d")]
        cells += [_fmt(r.get(n), ".3g") if isinstance(r.get(n), float)
                  else _fmt(r.get(n)) for n in shown]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", *cost_lines(rows, final, confirmation)]
    budget = cost.describe(out)
    if budget:
        lines += [budget, ""]
    write_text(out / "report.md", "\n".join(lines) + "\n")


def cost_lines(rows, final, confirmation=None) -> list:
    """report.md's "Cost" table: each phase's runs, optimizer steps and
    wall time (the trials' as recorded per trial, so a resumed search
    counts every trial once; a confirmation's runs as tuning.confirm
    recorded them)."""
    def number(value):
        return float(value) if value not in (None, "") else 0.0
    phases = [("trials", f"{len(rows)} trials, "
               f"{sum(int(number(r.get('folds_run'))) for r in rows)} fold runs",
               sum(number(r.get("steps_run")) for r in rows),
               sum(number(r.get("wall_time_s")) for r in rows))]
    if confirmation:
        runs = confirmation["runs"].values()
        phases.append(("confirmation of the switch", str(len(runs)),
                       sum(r["steps"] for r in runs), sum(r["seconds"] for r in runs)))
    for key, name in (("best", "final retraining"), ("default", "zoo train defaults")):
        run = (final or {}).get(key)
        if run:
            phases.append((name, "1", number(run.get("optimizer_steps")),
                           number(run.get("wall_time_s"))))
    total = ("total", "", sum(p[2] for p in phases), sum(p[3] for p in phases))
    return ["## Cost", "", "| phase | runs | optimizer steps | wall time (s) |",
            "|---|---|---|---|",
            *(f"| {n} | {r} | {s:.0f} | {t:.0f} |" for n, r, s, t in [*phases, total]),
            ""]
