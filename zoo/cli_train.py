"""`zoo train`, `zoo convert-weights`, `zoo evaluate` and `zoo predict`."""

from __future__ import annotations

import json

from zoo.cli_args import UsageError, add_data_args, command, shape


# `zoo train` flags are TrainConfig's fields (each declared once, in
# training.TrainConfig, with a flag of the same name); these differ or have
# no flag (set from Python or by `zoo tune` only).
_FLAG_OF = {"model": "name", "jit_compile": "jit"}
NO_FLAG = ("rho", "epsilon", "beta_1", "beta_2", "width_multiplier", "extra")


def _train_config(args):
    import dataclasses
    from zoo import training
    fields = [f.name for f in dataclasses.fields(training.TrainConfig)
              if f.name not in NO_FLAG]
    values = {f: getattr(args, _FLAG_OF.get(f, f)) for f in fields}
    _recipe_floors(args, values)
    values["preprocessing"] = _preprocessing(args)
    if args.fast:
        values["precision"], values["jit_compile"] = training.fast_path(args.name)
        print(f"fast path: precision {values['precision']}, jit_compile "
              f"{values['jit_compile']}", flush=True)
    return training.TrainConfig(**values)


def refuse_floor_without_effect(args, floor):
    """--min-steps / --min-image-size beside --epochs / --image-size is refused
    (zoo train and zoo tune)."""
    from zoo.train_config import FLOORS
    option, what = FLOORS[floor]
    if getattr(args, floor) is not None and getattr(args, option) is not None:
        flag, other = (f"--{name.replace('_', '-')}" for name in (floor, option))
        raise UsageError(f"{flag} is the floor on {what}; with {other} it "
                         "would have no effect. Give one of them.")


def _recipe_floors(args, values):
    """--min-steps and --min-image-size: the recipe's unless given, and
    refused beside the option with which they would have no effect."""
    from zoo.recipe import RECIPE
    from zoo.train_config import FLOORS
    for floor in FLOORS:
        refuse_floor_without_effect(args, floor)
        if getattr(args, floor) is None:
            values[floor] = getattr(RECIPE, floor)


def _preprocessing(args) -> str:
    if args.preprocessing:
        return args.preprocessing
    from zoo import weights
    mode = weights.preprocessing_of(args.name, args.weights) if args.weights else None
    if mode and mode != "unit":
        print(f"preprocessing: {mode} (that of --weights {args.weights})", flush=True)
    return mode or "unit"


def _without(argv, flag):
    """`argv` without `flag` and its value."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _check_jax_job(args, config):
    """--processes runs every process on Keras' JAX backend: options that
    only TensorFlow honours are refused before any process starts."""
    tf_only = [flag for flag, given in (
        ("--strategy", config.strategy), ("--jit", config.jit_compile),
        ("--backend tensorflow", getattr(args, "backend", None) == "tensorflow"))
        if given]
    if tf_only:
        raise UsageError(f"--processes runs each process on Keras' JAX backend "
                         f"(docs/distributed.md); {', '.join(tf_only)} would apply "
                         "to TensorFlow. Drop it, or train in one process.")


def cmd_train(args) -> int:
    """Train NAME on a dataset and write model.keras, history.csv,
    metrics.json, curves.png and config.json into --out. Killed runs
    resume when the same command is run again."""
    from zoo import distributed, training
    config = _train_config(args).validate()
    given = (args.coordinator, args.num_processes, args.process_id)
    if args.processes is not None:
        if any(v is not None for v in given):
            raise UsageError("--processes starts the processes of a job on this "
                             "machine; --coordinator/--num-processes/--process-id "
                             "(or their environment variables) run one process of "
                             "a job started elsewhere. Use one or the other.")
        distributed.check_job(args.processes, config.batch_size)
        _check_jax_job(args, config)
        distributed.launch(_without(args.argv, "--processes"), args.processes)
        return 0
    group = distributed.process_group(*given)
    metrics = training.train(config, args.out, overwrite=args.overwrite,
                             processes=group)
    if group is not None:
        print(f"process {metrics['process']}: weights sha256 "
              f"{metrics['weights_sha256']}", flush=True)
        if not group.is_chief:
            return 0
    print(f"test accuracy {metrics['test_accuracy']:.4f}, test loss "
          f"{metrics['test_loss']:.4f}, {metrics['epochs']} epochs, "
          f"{metrics['wall_time_s']:.0f} s; outputs in {args.out}")
    return 0


def _train_parser(sub):
    from zoo.recipe import RECIPE, SELECTIONS
    p = command(sub, "train", cmd_train, "train a model on a dataset")
    p.add_argument("name", help="registry name, e.g. resnet20")
    add_data_args(p, out="output folder")
    p.add_argument("--epochs", type=int,
                   help="training epochs (default: 10, or more on a small dataset "
                        "so that the run gets at least --min-steps optimizer steps)")
    p.add_argument("--min-steps", type=int,
                   help="floor on optimizer steps when --epochs is not given "
                        f"(default {RECIPE.min_steps})")
    p.add_argument("--selection", choices=SELECTIONS,
                   help="keep the epoch that scored best on validation, or the "
                        "last one (default: best with at least "
                        f"{RECIPE.min_val_for_best} validation images, else last)")
    _train_optimization_args(p)
    _train_transfer_args(p)
    _train_input_args(p)
    _train_speed_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, help="early-stopping patience")
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--limit", type=int, help="use at most N training images")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run in --out")


def _train_optimization_args(p):
    from zoo.augment import PRESETS
    from zoo.optim import DEFAULT_LR, OPTIMIZERS, SCHEDULES
    from zoo.recipe import RECIPE
    p.add_argument("--batch-size", type=int, default=RECIPE.batch_size,
                   help="(default %(default)s)")
    # Names are checked by the library (with a "did you mean"), not by
    # argparse; the help lists the registries' names.
    p.add_argument("--optimizer", default="adam",
                   help=f"{' | '.join(OPTIMIZERS)} (default %(default)s)")
    rates = ", ".join(f"{name} {rate:g}" for name, rate in DEFAULT_LR.items())
    fine = ", ".join(f"{name} {rate:g}" for name, rate in RECIPE.fine_tune_lr.items())
    p.add_argument("--lr", type=float, help=f"peak learning rate (default per "
                   f"optimizer: {rates}; with --fine-tune {fine})")
    p.add_argument("--momentum", type=float,
                   help="momentum of the momentum and nesterov optimizers (default 0.9)")
    p.add_argument("--schedule", default=RECIPE.schedule,
                   help=f"{' | '.join(SCHEDULES)} (default %(default)s, the recipe's)")
    p.add_argument("--warmup-epochs", type=int,
                   help="warm-up of warmup_cosine and warmup_linear (default: one "
                        "epoch, at most a tenth of the run; a number given is honoured)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled weight decay (AdamW-style for every optimizer)")
    p.add_argument("--label-smoothing", type=float, default=RECIPE.label_smoothing,
                   help="of the cross-entropy loss (default %(default)s, the recipe's)")
    p.add_argument("--regularizer", help="l1 | l2 | elastic_net, optionally with "
                   "strengths: l2:1e-4, elastic_net:1e-5,1e-4")
    p.add_argument("--dropout", type=float, help="dropout before the classifier")
    p.add_argument("--drop-path", type=float, default=0.0,
                   help="stochastic depth rate (resnet, resnext)")
    p.add_argument("--augment",
                   help=f"{' | '.join(PRESETS)} (default: {RECIPE.augment}, with "
                        f"--fine-tune too; docs/training.md)")


def _train_transfer_args(p):
    p.add_argument("--weights", metavar="TAG|PATH",
                   help="start from pretrained weights (tag or file)")
    p.add_argument("--fine-tune", action="store_true",
                   help="LP-FT transfer learning from --weights: a new head fit "
                        "by a linear probe, then every layer fine-tuned (the "
                        "backbone at a lower learning rate); docs/transfer.md")
    p.add_argument("--keep-head", action="store_true",
                   help="with --fine-tune: keep the checkpoint's classifier "
                        "(same classes) instead of a new head")
    p.add_argument("--bn", default="auto", choices=("auto", "train", "freeze"),
                   help="BatchNormalization while fine-tuning (default auto: "
                        "train it when a batch holds >= 16 images)")
    p.add_argument("--backbone-lr-factor", type=float, default=1.0,
                   help="with --fine-tune: backbone learning rate = lr × this, "
                        "in (0, 1] (default 1: measured best, docs/transfer.md)")


def _train_input_args(p):
    from zoo.recipe import RECIPE
    p.add_argument("--image-size", type=int, help="resize images to this size")
    p.add_argument("--min-image-size", type=int,
                   help="without --image-size: resize images whose shorter side "
                        "is below this up to it, aspect kept (default "
                        f"{RECIPE.min_image_size}, the recipe's)")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--num-classes", type=int)
    p.add_argument("--validation-split", type=float, default=None,
                   help=f"held-out fraction (default: the recipe's: "
                        f"{RECIPE.validation_split:g} when that holds at least "
                        f"{RECIPE.min_val_for_best} images, else 0: every labelled "
                        "image trains and the last epoch is kept)")
    p.add_argument("--preprocessing",
                   help="unit | tf | caffe | torch | raw (default: what --weights "
                        "were trained with when known, else unit: x/255)")


def _train_speed_args(p):
    """Precision, compilation and the ways to use several devices or processes."""
    from zoo.training import PRECISIONS
    p.add_argument("--precision", default="float32", choices=PRECISIONS)
    p.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    p.add_argument("--fast", action="store_true",
                   help="the measured fast path: mixed_float16 on GPUs; on CPUs "
                        "with bf16 instructions mixed_bfloat16, except for "
                        "MobileNets (slower in bf16); else float32")
    p.add_argument("--strategy", choices=("mirrored",),
                   help="MirroredStrategy over local GPUs (else CPUs); "
                        "TensorFlow backend, one host")
    p.add_argument("--processes", type=int, metavar="N",
                   help="data-parallel training in N local processes "
                        "(keras.distribution, JAX backend; docs/distributed.md)")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="one process of a multi-process job: the address of "
                        "process 0 (or $ZOO_COORDINATOR); no authentication, "
                        "keep it on a trusted network")
    p.add_argument("--num-processes", type=int, metavar="N",
                   help="processes in the job (or $ZOO_NUM_PROCESSES, $SLURM_NTASKS)")
    p.add_argument("--process-id", type=int, metavar="I",
                   help="this process's id, 0..N-1 (or $ZOO_PROCESS_ID, "
                        "$SLURM_PROCID); process 0 writes the outputs")


def cmd_convert_weights(args) -> int:
    """Convert a torchvision or timm checkpoint (.safetensors; .pth/.pt with
    torch installed) of a torchvision-layout model into a Keras
    .weights.h5 file, matching every tensor by its torchvision name."""
    from zoo import convert
    shape = args.input_shape
    result = convert.convert(args.src, args.model, args.out, input_shape=shape)
    print(f"wrote {result['out']}: {result['model']}, "
          f"{result['num_classes'] or 'no'} classes, {result['params']:,} parameters, "
          f"preprocessing {result['preprocessing']} (ImageNet mean/std; pass "
          f"--preprocessing torch when training from it)")
    return 0


def _convert_weights_parser(sub):
    p = command(sub, "convert-weights", cmd_convert_weights,
                 "torchvision/timm checkpoint -> .weights.h5")
    p.add_argument("src", help="checkpoint file (.safetensors, .pth, .pt)")
    p.add_argument("--model", required=True,
                   help="zoo model name: alexnet, resnet18, resnet34, tv_resnet50, "
                        "tv_resnet101, tv_resnet152, resnext50_32x4d, resnext101_32x8d")
    p.add_argument("--out", required=True, metavar="FILE.weights.h5")
    p.add_argument("--input-shape", type=shape, metavar="H,W,C")


def cmd_evaluate(args) -> int:
    """Evaluate a .keras or .tflite model on a dataset's test split."""
    from zoo import inference
    result = inference.evaluate(args.model, args.dataset, data_dir=args.data_dir,
                                batch_size=args.batch_size,
                                preprocessing_mode=args.preprocessing,
                                limit=args.limit)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        loss = "" if result["loss"] is None else f", loss {result['loss']:.4f}"
        print(f"{result['model']} on {result['dataset']} (test split, "
              f"{result['examples']} images): accuracy {result['accuracy']:.4f}{loss}")
    return 0


def _evaluate_parser(sub):
    p = command(sub, "evaluate", cmd_evaluate, "accuracy of a .keras or .tflite model")
    p.add_argument("model", help="model.keras or model.tflite")
    add_data_args(p)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--preprocessing", help="default: from config.json beside "
                   "the model, else unit")
    p.add_argument("--limit", type=int, help="evaluate at most N images")
    p.add_argument("--json", action="store_true")


def cmd_predict(args) -> int:
    """Print the top-k class names for image files."""
    from zoo import inference
    results = inference.predict(args.model, args.images, top_k=args.top_k,
                                preprocessing_mode=args.preprocessing)
    for path, top in zip(args.images, results):
        print(path)
        for name, p in top:
            print(f"  {p:7.2%}  {name}")
    return 0


def _predict_parser(sub):
    p = command(sub, "predict", cmd_predict, "top-k classes for image files")
    p.add_argument("model", help="model.keras or model.tflite")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--preprocessing")


def add_parsers(sub):
    """train, convert-weights, evaluate, predict."""
    _train_parser(sub)
    _convert_weights_parser(sub)
    _evaluate_parser(sub)
    _predict_parser(sub)
