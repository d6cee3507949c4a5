"""A switch away from `zoo train`'s configuration, confirmed at the final
run's length.

Trials are short (tuning.plan: 150 optimizer steps on a 500-image set) and
the final run is long (the recipe's floor: 1,000 steps when this was
measured, 1,500 since), and a ranking made at the trials' length does not
always hold at the final's: on rgb500 (seed 0,
docs/tuning.md, "Confirmation") AdamW at 7.4e-3 without label smoothing
beat `zoo train`'s configuration on all three folds at 150 steps and on the
second fold at 500, tied at 667, lost to it at 1,000 steps on that fold, and
lost by 2.1 points on the test split after the final run. So when the
selection (tuning.exports.choose_best) passes over the first trial, both
configurations train once more on the second fold's training images for as
many passes over them as the final run makes over all the labelled images
(two thirds of its steps under 3 folds), from the same seed, and are scored
on that fold; the challenger is kept only if it scores better there, else
the first trial is. That costs about one training run (two of two
thirds), and only in a search that would switch.

The runs are recorded in `out/confirm.json` as each ends, so a killed search
resumes after the last finished one, and a search run again reuses them.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import math
import time
from pathlib import Path

import keras

from zoo.budget import budget as run_budget
from zoo.io import write_json
from zoo.recipe import RECIPE

FILE = "confirm.json"


def needed(result) -> bool:
    """Whether a search's exports chose a trial other than the first."""
    return bool(result.get("first_trial")) and \
        result.get("best_trial") != result["first_trial"]


def confirm(result, hp_of, hypermodel, *, final, objective, out) -> dict:
    """Trains the first and the chosen trial for the final run's passes on
    the second fold (the holdout without folds) and keeps the better.

    Args:
        result: tuning.exports.export's result (best and first trial).
        hp_of: trial id -> its keras-tuner HyperParameters.
        hypermodel: the search's ZooHyperModel (its data, space and plan).
        final: the final run's options (tuning.options.final_options).
        objective: (name, "max"|"min").

    Returns:
        confirm.json's record: each run's score, steps and seconds, and
        `kept`, the trial id the search goes on with.
    """
    out = Path(out)
    first, best = result["first_trial"], result["best_trial"]
    plan = hypermodel.plan
    fold = plan.fold_ids()[1] if plan.folds > 1 else None
    record = _previous(out, (first, best), fold, final)
    for trial_id in (first, best):
        if trial_id not in record["runs"]:
            record["runs"][trial_id] = _train(hypermodel, hp_of(trial_id), fold,
                                              final, objective[0])
            write_json(out / FILE, record)
    a, b = (record["runs"][t]["score"] for t in (first, best))
    record["kept"] = best if _better(b, a, objective[1]) else first
    write_json(out / FILE, record)
    return record


def _better(b, a, direction) -> bool:
    """Whether score `b` beats `a` (None: the run diverged)."""
    if b is None or a is None:
        return a is None and b is not None
    return b > a if direction == "max" else b < a


def settle(result, record, oracle, out, objective) -> dict:
    """`result` and best_hyperparameters.json with the trial the
    confirmation kept, and its note."""
    path = Path(out) / "best_hyperparameters.json"
    best = json.loads(path.read_text())
    kept = oracle.trials[record["kept"]]
    said = note(record, objective=objective)
    best.update(trial_id=kept.trial_id, score=kept.score,
                values=kept.hyperparameters.values, confirmation=record,
                note=f"{best['note']}; {said}" if best.get("note") else said)
    write_json(path, best)
    return {**result, "best_hyperparameters": kept.hyperparameters.values,
            "best_score": kept.score, "best_trial": kept.trial_id}


def _previous(out, pair, fold, final) -> dict:
    """confirm.json's finished runs when it confirmed the same pair on the
    same fold for the same final run, else an empty record."""
    path = out / FILE
    fresh = {"pair": list(pair), "fold": None if fold is None else list(fold),
             "final": {k: final.get(k) for k in ("epochs", "steps")}, "runs": {}}
    if not path.is_file():
        return fresh
    old = json.loads(path.read_text())
    same = all(old.get(k) == fresh[k] for k in ("pair", "fold", "final"))
    return old if same else fresh


def _train(search_model, hp, fold, final, objective) -> dict:
    """One configuration trained on `fold`'s training images for the final
    run's passes over the data (its epochs, each with the final run's steps
    scaled to the fold's share of the images), from the search's seed, and
    scored once, after its last epoch, on the fold's validation images."""
    start = time.perf_counter()
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(search_model.data_kwargs.get("seed") or 0)
    # Its own data pipeline, from the seed: the augmentation layers of the
    # trials' pipeline carry a random state the trials advanced, and with
    # it the same run scored 0.6946 after a search's trials on rgb500 and
    # 0.7425 in a fresh process (167 images).
    hypermodel = copy.copy(search_model)
    hypermodel._data = {}
    data = hypermodel.trial_data(hp, fold)
    n_train, batch = data.info.num_train, hypermodel.batch_size(hp)
    limit = hypermodel.data_kwargs.get("limit")
    everything = min(limit or math.inf, hypermodel.plan.num_labelled)  # the final's
    epochs, steps = run_budget(everything, batch, epochs=final.get("epochs"),
                               min_steps=final.get("steps") or RECIPE.min_steps)
    steps = max(1, math.ceil(steps * n_train / everything))
    hypermodel.plan = dataclasses.replace(hypermodel.plan, steps_per_epoch=steps,
                                          epochs=epochs)
    model = hypermodel.build(hp)
    train, val = hypermodel.prepare(hp, model, fold)
    model.fit(train.repeat(), steps_per_epoch=steps, epochs=epochs, verbose=0,
              shuffle=False)      # the pipeline shuffles itself
    scores = model.evaluate(val, verbose=0, return_dict=True)
    score = scores.get(objective.removeprefix("val_"))
    usable = score is not None and math.isfinite(score)
    return {"score": float(score) if usable else None, "steps": epochs * steps,
            "scored": data.info.num_val,
            "seconds": round(time.perf_counter() - start, 1)}


def note(record, *, objective) -> str:
    """What the confirmation decided, for best_hyperparameters.json and
    report.md."""
    first, best = record["pair"]
    a, b = (record["runs"][t] for t in (first, best))
    where = "the second fold" if record["fold"] else "the validation split"
    verdict = (f"trial {best} kept" if record["kept"] == best else
               f"trial {first} (every knob at its default) kept")
    def fmt(run):
        return "NaN (diverged)" if run["score"] is None else f"{run['score']:.4f}"
    return (f"confirmed at the final run's length ({a['steps']} optimizer steps "
            f"each, on {where}, {a['scored']} images): trial {best} scored "
            f"{objective} {fmt(b)} against trial {first}'s {fmt(a)}; {verdict}")
