"""The `zoo` command line.

Usage errors (bad flags, and whatever our validation rejects:
zoo.errors.InputError) exit with status 2; failures while running and
internal errors (any other exception) exit with status 1. All print one line
starting with "zoo: error:" instead of a traceback; ZOO_DEBUG=1 shows the
traceback of every error. docs/errors.md lists what was tried.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


class UsageError(Exception):
    """A mistake in the command line itself (exit status 2); see zoo.errors
    for the errors the library's validation raises."""


def _fmt_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def cmd_list(args) -> int:
    """List registered models (fnmatch PATTERN)."""
    from zoo import registry
    names = registry.list_models(args.pattern, family=args.family,
                                 pretrained=args.pretrained)
    if not names:
        print(f"No model matches {args.pattern!r}.", file=sys.stderr)
        return 1
    entries = registry.entries()
    width = max(len(n) for n in names)
    for name in names:
        e = entries[name]
        tags = ", ".join(registry.weight_tags(name)) or "-"
        print(f"{name:<{width}}  {e.family:<9}  {e.default_size:>3}px  "
              f"weights: {tags}")
    return 0


def _list_parser(sub):
    p = _command(sub, "list", cmd_list, "list the registered models")
    p.add_argument("pattern", nargs="?", default="*",
                   help="fnmatch pattern such as 'resnet*' (default: all)")
    from zoo.registry import FAMILIES
    p.add_argument("--family", help=f"keep one family: {', '.join(FAMILIES)}")
    p.add_argument("--pretrained", action="store_true",
                   help="only models with shipped or downloadable weights")


def cmd_info(args) -> int:
    """Build NAME and print its parameter count, multiply-accumulates and input
    sizes."""
    import zoo
    zoo.registry.get_entry(args.name)      # fail fast on a bad name
    kwargs = {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.input_shape is not None:
        kwargs["input_shape"] = args.input_shape
    info = zoo.model_info(args.name, **kwargs)
    if args.json:
        print(json.dumps(info, indent=2, default=list))
        return 0
    p = info["params"]
    print(f"model:          {info['name']} ({info['family']})")
    print(f"reference:      {info['reference']}")
    print(f"params:         {p['total']:,} total, {p['trainable']:,} trainable "
          f"({_fmt_count(p['total'])})")
    print(f"MACs:           {info['macs']:,} ({_fmt_count(info['macs'])}) at "
          f"{'×'.join(str(d) for d in info['input_shape'])}")
    print(f"input:          default {info['default_input_size'][0]}px, "
          f"minimum {info['min_input_size'][0]}px")
    print(f"classes:        {info['default_classes']} by default")
    print(f"preprocessing:  {info['preprocessing']}")
    print(f"weights:        {', '.join(info['weights']) or '-'}")
    for spec in zoo.registry.get_entry(args.name).weights.values():
        acc = spec.metrics.get("test_accuracy")
        print(f"  {spec.full_tag}: {spec.dataset}, input "
              f"{'×'.join(map(str, spec.input_shape))}, preprocessing "
              f"{spec.preprocessing}, test accuracy {acc}, sha256 {spec.sha256[:12]}…")
        print(f"    reproduce: {spec.command}")
    return 0


def _info_parser(sub):
    p = _command(sub, "info", cmd_info, "parameters, MACs and inputs of a model")
    p.add_argument("name", help="registry name, e.g. resnet50")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C")
    p.add_argument("--json", action="store_true", help="print JSON")


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
    values["preprocessing"] = _preprocessing(args)
    if args.fast:
        values["precision"], values["jit_compile"] = training.fast_path(args.name)
        print(f"fast path: precision {values['precision']}, jit_compile "
              f"{values['jit_compile']}", flush=True)
    return training.TrainConfig(**values)


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
    p = _command(sub, "train", cmd_train, "train a model on a dataset")
    p.add_argument("name", help="registry name, e.g. resnet20")
    _add_data_args(p, out="output folder")
    p.add_argument("--epochs", type=int,
                   help="training epochs (default: 10, or more on a small dataset "
                        "so that the run gets at least --min-steps optimizer steps)")
    p.add_argument("--min-steps", type=int, default=RECIPE.min_steps,
                   help="floor on optimizer steps when --epochs is not given "
                        "(default %(default)s)")
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
    p.add_argument("--schedule", default="warmup_cosine",
                   help=f"{' | '.join(SCHEDULES)} (default %(default)s)")
    p.add_argument("--warmup-epochs", type=int,
                   help="warm-up of warmup_cosine (default: one epoch, at most a "
                        "tenth of the run; a number given is honoured)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled weight decay (AdamW-style for every optimizer)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--regularizer", help="l1 | l2 | elastic_net, optionally with "
                   "strengths: l2:1e-4, elastic_net:1e-5,1e-4")
    p.add_argument("--dropout", type=float, help="dropout before the classifier")
    p.add_argument("--drop-path", type=float, default=0.0,
                   help="stochastic depth rate (resnet, resnext)")
    p.add_argument("--augment",
                   help=f"{' | '.join(PRESETS)} (default: {RECIPE.augment}, with "
                        f"--fine-tune {RECIPE.fine_tune_augment}; docs/training.md)")


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
    p.add_argument("--image-size", type=int, help="resize images to this size")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--num-classes", type=int)
    p.add_argument("--validation-split", type=float, default=0.1)
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
    p = _command(sub, "convert-weights", cmd_convert_weights,
                 "torchvision/timm checkpoint -> .weights.h5")
    p.add_argument("src", help="checkpoint file (.safetensors, .pth, .pt)")
    p.add_argument("--model", required=True,
                   help="zoo model name: alexnet, resnet18, resnet34, tv_resnet50, "
                        "tv_resnet101, tv_resnet152, resnext50_32x4d, resnext101_32x8d")
    p.add_argument("--out", required=True, metavar="FILE.weights.h5")
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C")


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
    p = _command(sub, "evaluate", cmd_evaluate, "accuracy of a .keras or .tflite model")
    p.add_argument("model", help="model.keras or model.tflite")
    _add_data_args(p)
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
    p = _command(sub, "predict", cmd_predict, "top-k classes for image files")
    p.add_argument("model", help="model.keras or model.tflite")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--preprocessing")


def cmd_export(args) -> int:
    """Export a .keras model as a TensorFlow SavedModel, a LiteRT .tflite file
    and/or an ONNX file; each is run back (TensorFlow, LiteRT,
    onnxruntime) on one batch and compared with Keras; equivalence.json
    records it."""
    import keras
    from zoo import export, inference
    # Formats, packages and backend are checked before the model is loaded.
    formats = export.check_formats(args.formats, keras.backend.backend())
    export.check_tolerance(args.tolerance)
    model = inference.load_keras(args.model)
    batch = None
    if args.dataset:
        from zoo import data as data_lib
        shape = model.input_shape[1:]
        data = data_lib.load(args.dataset, data_dir=args.data_dir,
                             image_size=tuple(shape[:2]), channels=shape[2],
                             batch_size=16, validation_split=0.0)
        batch = next(iter(data.test))[0]
    results = export.export(model, args.out, formats, batch=batch,
                            tolerance=args.tolerance)
    failed = [f for f, r in results.items() if not r["ok"]]
    if failed:
        print(f"zoo: error: {', '.join(failed)} differ from the Keras model by more "
              f"than {args.tolerance:g} (see {args.out}/equivalence.json)",
              file=sys.stderr)
        return 1
    return 0


def _export_parser(sub):
    p = _command(sub, "export", cmd_export, "write SavedModel, LiteRT and ONNX "
                 "files, each checked against the Keras model")
    p.add_argument("model", help="model.keras")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--formats", default="saved_model,tflite",
                   help="comma-separated: saved_model, tflite, onnx (onnx needs "
                        'pip install "cnn-zoo[onnx]")')
    p.add_argument("--dataset", help="check on the first 16 test images of this "
                                     "dataset (default: 8 random images)")
    p.add_argument("--data-dir")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest absolute output difference allowed (default 1e-4)")


def cmd_compress(args) -> int:
    """Compress a .keras model (a zoo model or a Keras 3 CNN) with TF-MOT
    (pruning, clustering, quantization-aware training) and the LiteRT
    converter; writes model.tflite, float.tflite, report.json, report.md
    and report.png into --out."""
    # Imported here: `zoo` itself never imports compression (or TF-MOT).
    from zoo.compression import compress
    report = compress(args.model, args.dataset, data_dir=args.data_dir,
                      out=args.out, preset=args.preset, prune=args.prune,
                      structure=args.structure, clusters=args.cluster, init=args.init,
                      quantize=None if args.quantize == "none" else args.quantize,
                      steps=args.steps, epochs=args.epochs, learning_rate=args.lr,
                      io=args.io, latency_runs=args.latency_runs,
                      distribution=args.distribution,
                      verbose=2 if args.verbose else 0)
    base, final = report["variants"][0], report["variants"][-1]
    if report["resumed_steps"]:
        print(f"resumed: {', '.join(report['resumed_steps'])} finished in an "
              "earlier run (progress.json)")
    print(f"float: accuracy {base['accuracy']:.4f}, {base['gzip_bytes'] / 1e3:.0f} kB gzip; "
          f"compressed: accuracy {final['accuracy']:.4f}, "
          f"{final['gzip_bytes'] / 1e3:.0f} kB gzip "
          f"({base['gzip_bytes'] / final['gzip_bytes']:.1f}× smaller; "
          f"{base['xz_bytes'] / final['xz_bytes']:.1f}× under xz); "
          f"outputs in {args.out}")
    return 0


def _compress_parser(sub):
    p = _command(sub, "compress", cmd_compress,
                 "prune, cluster and quantize a model to LiteRT")
    p.add_argument("model", help="model.keras")
    _add_data_args(p, out="output folder")
    from zoo.compression.presets import PRESETS
    described = "; ".join(f"{name}: " + ", ".join(f"{k} {v}" for k, v in values.items())
                          for name, values in PRESETS.items())
    p.add_argument("--preset", choices=tuple(PRESETS),
                   help=f"{described} (flags given beside it win)")
    p.add_argument("--prune", type=float, metavar="SPARSITY",
                   help="magnitude pruning to this sparsity, e.g. 0.8")
    p.add_argument("--distribution", choices=("uniform", "erk"),
                   help="how --prune is spread over the layers: uniform (each "
                        "at SPARSITY) or erk (larger layers pruned harder, the "
                        "same zeros in all); default: the preset's, else uniform")
    p.add_argument("--structure", metavar="M:N", help="structured sparsity, e.g. 2:4")
    p.add_argument("--cluster", type=int, metavar="K", help="weight clustering, K >= 2")
    p.add_argument("--init",
                   help="cluster centroids: kmeans++ (default) | linear | density | "
                        "random")
    p.add_argument("--quantize", default="auto",
                   choices=("auto", "int8", "qat", "dynamic", "float16", "none"),
                   help="auto (default): the preset's, else int8")
    p.add_argument("--io", default="float", choices=("float", "int8"),
                   help="input/output type of int8 models")
    p.add_argument("--steps", type=int, metavar="N",
                   help="optimizer steps of each fine-tuning step (default: at "
                        "least 1000 for pruning, 300 for clustering and QAT, or "
                        "two passes over the data, four with --preset deep)")
    p.add_argument("--epochs", type=int,
                   help="instead of --steps: passes over the data per step")
    p.add_argument("--lr", type=float,
                   help="Adam's peak learning rate of pruning; a tenth of it for "
                        "clustering and QAT; each step decays it to zero on a "
                        "cosine (default 3e-3)")
    p.add_argument("--latency-runs", type=int, default=50)
    p.add_argument("--verbose", action="store_true")


# Where a distributed search's processes run: the chief's own options, not
# passed on to the processes it starts.
_PLACEMENT = ("workers", "chief_host", "chief_port", "timeout")
_DEFAULT_CHIEF_HOST = "127.0.0.1"


def _argv_for(parser, args, skip=()):
    """The arguments of `parser` that parse to `args`, read from the parser's
    own declarations (options at their defaults and those in `skip` left
    out): a flag added to the parser is passed on without a second list."""
    positional, options = [], []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest in skip or value is None or value == action.default \
                or isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            positional.append(str(value))
        elif isinstance(action, argparse._StoreTrueAction):
            options.append(max(action.option_strings, key=len))
        else:
            options += [max(action.option_strings, key=len), str(value)]
    return positional + options


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
                  max_trials=args.max_trials, epochs=args.epochs,
                  trial_steps=args.trial_steps, folds=args.folds,
                  objective=args.objective, out=args.out, seed=args.seed,
                  space=args.space, data_dir=args.data_dir,
                  image_size=args.image_size, prune=not args.no_pruning,
                  limit=args.limit, verbose=2 if args.verbose else 0,
                  trials_per_process=args.trials_per_process,
                  retrain=not args.no_retrain, final_epochs=args.final_epochs,
                  final_steps=args.final_steps, final_augment=args.final_augment,
                  compare_default=not args.no_compare_default)
    if args.workers is not None:
        from zoo.tuning import distributed
        from zoo.tuning.search import check_arguments
        check_arguments(args.name, args.dataset, **kwargs)
        argv = [args.command, *_argv_for(args.parser, args, skip=_PLACEMENT)]
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
    p = _command(sub, "tune", cmd_tune, "hyperparameter search with keras-tuner")
    p.add_argument("name", nargs="?", help="registry name, e.g. resnet20")
    _add_data_args(p, required=False, out="the search folder")
    # Not read from tuning.search.TUNERS: importing it imports keras-tuner,
    # which every zoo command would then pay for (tests/test_cli.py checks
    # that the two lists agree).
    p.add_argument("--tuner", default="random",
                   help="random | bayesian | hyperband | grid (default %(default)s)")
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--trial-steps", type=int, metavar="N",
                   help="optimizer steps per trial (default: 3 passes over the "
                        "data, at least 300 steps)")
    p.add_argument("--epochs", type=int,
                   help="instead of --trial-steps: passes over the training data "
                        "per trial (hyperband: maximum)")
    p.add_argument("--folds", type=int, metavar="K",
                   help="score trials by K-fold cross-validation; 1: a holdout of "
                        "at least 500 images (default: 3 folds below 5,000 "
                        "labelled images, else 1)")
    p.add_argument("--objective", default="val_accuracy",
                   help="val_accuracy, or several for a Pareto front: "
                        "val_accuracy,params or val_accuracy,latency")
    p.add_argument("--space", metavar="focused|wide|FILE",
                   help="focused (default: Adam/AdamW learning rate, weight decay, "
                        "label smoothing), wide (every knob), or a JSON/YAML "
                        "space file merged over the focused space")
    _tune_final_args(p)
    p.add_argument("--image-size", type=int)
    p.add_argument("--limit", type=int, help="use at most N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pruning", action="store_true",
                   help="turn off median-stopping trial pruning")
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
    p.add_argument("--no-compare-default", action="store_true",
                   help="do not train zoo train's defaults for the report")


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
    p = _command(sub, "demo", cmd_demo, "train, evaluate (and tune, compress) on digits")
    p.add_argument("--out", default="zoo-demo", metavar="DIR")
    p.add_argument("--epochs", type=int,
                   help="training epochs (default: the recipe's budget, as zoo train)")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (seconds), for smoke tests")


def _add_data_args(p, required=True, out=None):
    """--dataset and --data-dir, and --out DIR (described by `out`) if given;
    `required` applies to --dataset and --out."""
    p.add_argument("--dataset", required=required, metavar="SRC",
                   help="digits | mnist | fashion_mnist | cifar10 | cifar100 | "
                        "folder:PATH | npz:PATH | tfds:NAME")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the dataset's files (e.g. "
                        "/usr/share/datasets/fashion-mnist)")
    if out is not None:
        p.add_argument("--out", required=required, metavar="DIR", help=out)


def _shape(text: str):
    try:
        dims = tuple(int(d) for d in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected H,W,C such as 32,32,3; got {text!r}") from None
    if len(dims) != 3:
        raise argparse.ArgumentTypeError(
            f"expected three numbers H,W,C; got {text!r}")
    return dims


def _command(sub, name, handler, help):
    """The sub-command `name` that `handler` runs; its description is the
    handler's docstring."""
    description = " ".join((handler.__doc__ or "").split())
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=handler, parser=p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Exact Keras 3 CNN architectures: list, inspect, train, "
                    "evaluate, export and compress them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Each command declares its parser next to its handler.
    for add in (_list_parser, _info_parser, _train_parser, _convert_weights_parser,
                _evaluate_parser, _predict_parser, _export_parser, _compress_parser,
                _tune_parser, _demo_parser):
        add(sub)
    return parser


def _add_backend_option(parser):
    """`--backend` on the main parser and on every command."""
    from zoo.startup import BACKENDS
    subparsers = [a for a in parser._actions
                  if isinstance(a, argparse._SubParsersAction)]
    for p in [parser, *(c for s in subparsers for c in s.choices.values())]:
        p.add_argument("--backend", choices=BACKENDS, default=argparse.SUPPRESS,
                       help="Keras backend (sets KERAS_BACKEND before Keras is "
                            "imported; default: $KERAS_BACKEND, else tensorflow)")


def _check_backend(args):
    import keras
    wanted = getattr(args, "backend", None)
    if wanted and keras.backend.backend() != wanted:
        raise UsageError(f"--backend {wanted} must be set before Keras is imported; "
                         f"this process already runs Keras on "
                         f"{keras.backend.backend()}. Run the zoo command in a new "
                         f"process, or set KERAS_BACKEND={wanted}.")


def main(argv=None) -> int:
    parser = build_parser()
    _add_backend_option(parser)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from zoo.errors import InputError, ZooError
    debug = bool(os.environ.get("ZOO_DEBUG"))
    try:
        _check_backend(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except (UsageError, InputError) as err:
        # What our own validation rejects: a usage error.
        if debug:
            raise
        print(f"zoo: error: {err}", file=sys.stderr)
        return 2
    except (ZooError, OSError) as err:
        # A failure while running (a NaN loss, a full disk, a lost worker).
        if debug:
            raise
        print(f"zoo: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:        # a bug or an unforeseen library error
        if debug:
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        print(f"zoo: error: internal error, unexpected {type(err).__name__}: {first} "
              "(rerun with ZOO_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
