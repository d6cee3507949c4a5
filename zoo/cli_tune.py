"""`zoo tune` and `zoo demo` (the application layer: they import
`zoo.tuning` and `zoo.compression`, inside the command)."""

from __future__ import annotations

import argparse

from zoo.cli_args import UsageError, add_data_args, argv_for, command
from zoo.cli_train import refuse_floor_without_effect


# Where a distributed search's processes run: the chief's own options, not
# passed on to the processes it starts.
_PLACEMENT = ("workers", "chief_host", "chief_port", "timeout")
_DEFAULT_CHIEF_HOST = "127.0.0.1"


def cmd_tune(args) -> int:
    """Search optimizer, regularization and architecture settings of NAME with
    keras-tuner, then train the best configuration on train + validation
    and test it; writes report.md, trials.csv,
    best_hyperparameters.json, best_model.keras and plots into --out.
    Running the same command again resumes. keras-tuner's gRPC channel
    (--workers) has no authentication: keep the chief on a trusted
    network."""
    # Imported here: `zoo` itself never imports tuning.
    from zoo import tuning
    if args.report:
        print(tuning.report(args.report))
        return 0
    if not (args.name and args.dataset and args.out):
        raise UsageError("zoo tune needs NAME, --dataset and --out (or --report DIR).")
    refuse_floor_without_effect(args, "min_image_size")
    if args.workers is not None and args.trials_per_process is not None:
        raise UsageError("--trials-per-process is for local searches; with "
                         "--workers each worker is its own process already.")
    placed = [f"--{n.replace('_', '-')}" for n in _PLACEMENT[1:]
              if getattr(args, n) not in (None, _DEFAULT_CHIEF_HOST)]
    if args.workers is None and placed:
        raise UsageError(f"{', '.join(placed)} only apply to a distributed search "
                         "and would have no effect here: add --workers N, or drop "
                         "them.")
    kwargs = dict(tuner=args.tuner,
                  max_trials=args.max_trials, budget=args.budget, epochs=args.epochs,
                  trial_steps=args.trial_steps, folds=args.folds,
                  finalists=args.finalists,
                  objective=args.objective, out=args.out, seed=args.seed,
                  space=args.space, data_dir=args.data_dir,
                  image_size=args.image_size, min_image_size=args.min_image_size,
                  prune=not args.no_pruning,
                  limit=args.limit, verbose=2 if args.verbose else 0,
                  trials_per_process=args.trials_per_process,
                  retrain=not args.no_retrain, final_epochs=args.final_epochs,
                  final_steps=args.final_steps, final_augment=args.final_augment,
                  compare_default=args.compare_default, confirm=not args.no_confirm)
    if args.workers is not None:
        from zoo.tuning import distributed
        from zoo.tuning.search import check_arguments
        check_arguments(args.name, args.dataset, distributed=True, **kwargs)
        argv = [args.command, *argv_for(args.parser, args, skip=_PLACEMENT)]
        info = distributed.run(argv, workers=args.workers, out=args.out,
                               host=args.chief_host, port=args.chief_port,
                               timeout=3600 if args.timeout is None else args.timeout)
        print(f"distributed search finished in {info['wall_time_s']:.0f} s "
              f"(worker restarts: {sum(info['restarts'].values())})")
        print(tuning.report(args.out))
        return 0
    result = tuning.search(args.name, args.dataset, **kwargs)
    if result:
        print(tuning.report(args.out))
    return 0


def _tune_parser(sub):
    from zoo.recipe import RECIPE
    p = command(sub, "tune", cmd_tune, "hyperparameter search with keras-tuner")
    p.add_argument("name", nargs="?", help="registry name, e.g. resnet20")
    add_data_args(p, required=False, out="the search folder")
    # Not read from tuning.search.TUNERS: importing it imports keras-tuner,
    # which every zoo command would then pay for (tests/test_cli.py checks
    # that the two lists agree).
    p.add_argument("--tuner", default="random",
                   help="random | bayesian | hyperband | grid (default %(default)s)")
    # Defaults written out as the tuner list is (tests/test_cli.py compares
    # them with tuning.plan.MAX_TRIALS and tuning.cost.TRIAL_BUDGET).
    p.add_argument("--max-trials", type=int,
                   help="trials to run (default 8, fewer when --budget ends the "
                        "trials; given, every trial asked for runs unless "
                        "--budget is given too)")
    p.add_argument("--budget", type=float, metavar="RUNS",
                   help="wall time the trials may use, in training runs of this "
                        "data, estimated from the first trial (default 1 without "
                        "--max-trials; 0: none)")
    p.add_argument("--trial-steps", type=int, metavar="N",
                   help="optimizer steps per trial (default: 3 passes over the "
                        "data, at least 150 steps)")
    p.add_argument("--epochs", type=int,
                   help="instead of --trial-steps: passes over the training data "
                        "per trial (hyperband: maximum)")
    p.add_argument("--folds", type=int, metavar="K",
                   help="score trials by K-fold cross-validation; 1: a holdout of "
                        "at least 500 images (default: 3 folds below 5,000 "
                        "labelled images, else 1)")
    p.add_argument("--finalists", type=int, metavar="K",
                   help="under K-fold: a trial runs its other folds only with one "
                        "of the K best first-fold scores so far (default 1; 0: "
                        "every trial runs every fold)")
    p.add_argument("--objective", default="val_accuracy",
                   help="val_accuracy, or several for a Pareto front: "
                        "val_accuracy,params or val_accuracy,latency")
    p.add_argument("--space", metavar="focused|wide|FILE",
                   help="focused (default: Adam/AdamW learning rate, weight decay, "
                        "label smoothing), wide (every knob), or a JSON/YAML "
                        "space file merged over the focused space")
    _tune_final_args(p)
    p.add_argument("--image-size", type=int)
    p.add_argument("--min-image-size", type=int,
                   help="without --image-size: resize images whose shorter side "
                        "is below N up to N, aspect kept (default "
                        f"{RECIPE.min_image_size}, the recipe's)")
    p.add_argument("--limit", type=int, help="use at most N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pruning", action="store_true",
                   help="turn off median-stopping trial pruning")
    p.add_argument("--no-confirm", action="store_true",
                   help="take the best trial without confirming a switch from "
                        "zoo train's configuration at the final run's length "
                        "(two training runs, only when the search would switch)")
    _tune_process_args(p)
    p.add_argument("--report", metavar="DIR", help="print a finished search's summary")
    p.add_argument("--verbose", action="store_true")


def _tune_final_args(p):
    """The final retraining of the best configuration (tuning.final)."""
    from zoo.recipe import RECIPE
    p.add_argument("--no-retrain", action="store_true",
                   help="skip the final training of the best configuration on "
                        "train + validation (then no best_model.keras)")
    p.add_argument("--final-epochs", type=int, metavar="N",
                   help="passes over the data in the final training (instead of "
                        "--final-steps)")
    p.add_argument("--final-steps", type=int, metavar="N",
                   help="floor on optimizer steps of the final training "
                        f"(default {RECIPE.min_steps}, the recipe's, as zoo train)")
    p.add_argument("--final-augment", metavar="LEVEL",
                   help="augmentation of the final training (default: the best "
                        "trial's when the space searches it, else the recipe's, "
                        f"{RECIPE.augment})")
    p.add_argument("--compare-default", action=argparse.BooleanOptionalAction,
                   default=False,
                   help="also train zoo train's defaults on the same data for the "
                        "report: one more training run (default: off; the "
                        "defaults are the search's first trial)")


def _tune_process_args(p):
    """Where the trials run: fresh processes, or a chief and workers."""
    p.add_argument("--trials-per-process", type=int, metavar="K",
                   help="run the trials in fresh processes of at most K trials "
                        "each, bounding memory (TensorFlow keeps ~50 MB per "
                        "trained model)")
    p.add_argument("--workers", type=int,
                   help="run a chief and N workers on this host (keras-tuner gRPC)")
    p.add_argument("--chief-host", default=_DEFAULT_CHIEF_HOST,
                   help="address the chief binds to (default 127.0.0.1); for "
                        "several hosts set KERASTUNER_TUNER_ID/ORACLE_IP/ORACLE_PORT")
    p.add_argument("--chief-port", type=int, help="default: a free port")
    p.add_argument("--timeout", type=int,
                   help="seconds before a distributed search is stopped "
                        "(default 3600)")


def cmd_demo(args) -> int:
    """Run the main job on the embedded digits data: train a small zoo model,
    evaluate it, run a short search and a compression pass, and write a
    report. Under 5 minutes on 2 cores."""
    from zoo import demo
    report = demo.run(args.out, epochs=args.epochs, quick=args.quick)
    print(report)
    return 0


def _demo_parser(sub):
    p = command(sub, "demo", cmd_demo, "train, evaluate (and tune, compress) on digits")
    p.add_argument("--out", default="zoo-demo", metavar="DIR")
    p.add_argument("--epochs", type=int,
                   help="training epochs (default: the recipe's budget, as zoo train)")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (seconds), for smoke tests")


def add_parsers(sub):
    """tune, demo."""
    _tune_parser(sub)
    _demo_parser(sub)
