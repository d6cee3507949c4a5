"""Searches in fresh processes (`trials_per_process`): each child runs at
most K trials of the same search folder, bounding TensorFlow's memory
growth; and whether this process is a keras-tuner worker."""

from __future__ import annotations

import json
import os
from pathlib import Path


# Set by `search(trials_per_process=K)` in the child processes it starts.
PROCESS_BUDGET_ENV = "ZOO_TUNE_TRIALS_PER_PROCESS"


class ProcessBudgetReached(Exception):
    """This process ran its share of trials; a fresh process continues."""
_CHILD = ("import json, sys\n"
          f"from {__package__}.search import search\n"
          "result = search(**json.loads(sys.argv[1]))\n"
          "sys.exit(3 if result.get('budget_reached') else 0)\n")


def child_kwargs(call, out) -> dict:
    """search()'s arguments for a child process that runs trials only (JSON:
    paths as strings; no retraining, no nested processes)."""
    kwargs = {k: v for k, v in call.items() if k not in (
        "trials_per_process", "final_epochs", "final_steps", "final_augment",
        "compare_default", "confirm")}
    kwargs.update(out=str(out), retrain=False,
                  space=str(call["space"]) if isinstance(call["space"], Path)
                  else call["space"],
                  data_dir=None if call["data_dir"] is None else str(call["data_dir"]))
    return kwargs


def search_in_processes(per_process, out, kwargs):
    """Runs the search in child processes of at most `per_process` trials
    each until one of them finds the search complete."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env[PROCESS_BUDGET_ENV] = str(per_process)
    info = Path(out) / "trial_info"
    while True:
        before = len(list(info.glob("*.json"))) if info.is_dir() else 0
        code = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(kwargs)],
                              env=env).returncode
        kwargs["overwrite"] = False
        if code == 0:
            return
        after = len(list(info.glob("*.json"))) if info.is_dir() else 0
        if code != 3 or after == before:
            raise RuntimeError(f"A search process stopped with exit status {code} "
                               f"after {after - before} new trial(s); rerun the same "
                               "command to resume from the finished trials.")


def keras_tuner_is_worker():
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return bool(tuner_id) and "chief" not in tuner_id
