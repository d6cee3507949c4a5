"""The `zoo` command line.

Usage errors (bad flags, and whatever our validation rejects:
zoo.errors.InputError) exit with status 2; failures while running and
internal errors (any other exception) exit with status 1. All print one line
starting with "zoo: error:" instead of a traceback; ZOO_DEBUG=1 shows the
traceback of every error. docs/errors.md lists what was tried.

The commands are declared in `zoo.cli_train` (train, convert-weights,
evaluate, predict), `zoo.cli_deploy` (export, compress) and `zoo.cli_tune`
(tune, demo); `zoo.cli_args` holds what they share.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from zoo import cli_deploy, cli_train, cli_tune
from zoo.cli_args import CommandParser, UsageError, argv_for, command, fmt_count, shape
# The names tests and earlier versions read here.
from zoo.cli_train import NO_FLAG, _FLAG_OF, _train_config  # noqa: F401
from zoo.cli_tune import _PLACEMENT  # noqa: F401

_argv_for = argv_for


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
    p = command(sub, "list", cmd_list, "list the registered models")
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
          f"({fmt_count(p['total'])})")
    print(f"MACs:           {info['macs']:,} ({fmt_count(info['macs'])}) at "
          f"{'×'.join(str(d) for d in info['input_shape'])}")
    print(f"input:          default {info['default_input_size'][0]}px, "
          f"minimum {info['min_input_size'][0]}px")
    print(f"classes:        {info['default_classes']} by default")
    print(f"preprocessing:  {info['preprocessing']}")
    print(f"weights:        {', '.join(info['weights']) or '-'}")
    for _, record in sorted(zoo.registry.get_entry(args.name).weights.items()):
        print(_record_line(record))
    return 0


def _record_line(record) -> str:
    """One weight record as `zoo info` prints it."""
    metrics = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in record.metrics.items()
                        if k in ("top1", "test_accuracy")) or "no published accuracy"
    where = record.file if record.source == "shipped" else record.files[0].url
    lines = [f"  {record.full_tag} ({record.source}): {record.dataset}, input "
             f"{'×'.join(map(str, record.input_shape))}, {record.num_classes} classes, "
             f"preprocessing {record.preprocessing}, {metrics}",
             f"    file: {where}" + (f" ({record.files[0].hash[:20]}…)"
                                     if record.files[0].hash else ""),
             f"    licence: {record.licence}; card: {record.card or '-'}"]
    if record.command:
        lines.append(f"    reproduce: {record.command}")
    return "\n".join(lines)


def _info_parser(sub):
    p = command(sub, "info", cmd_info, "parameters, MACs and inputs of a model")
    p.add_argument("name", help="registry name, e.g. resnet50")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-shape", type=shape, metavar="H,W,C")
    p.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Exact Keras 3 CNN architectures: list, inspect, train, "
                    "evaluate, export and compress them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=CommandParser)
    sub.required = True
    # Each command declares its parser next to its handler.
    for add in (_list_parser, _info_parser, cli_train.add_parsers,
                cli_deploy.add_parsers, cli_tune.add_parsers):
        add(sub)
    parser.commands = sub.choices       # name -> the command's parser
    return parser


def _add_backend_option(parser):
    """`--backend` on the main parser and on every command."""
    from zoo.startup import BACKENDS
    for p in [parser, *parser.commands.values()]:
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


def _out_of_memory(err) -> bool:
    """TensorFlow's ResourceExhaustedError, JAX's RESOURCE_EXHAUSTED or
    Python's MemoryError (named, not imported: either backend may run)."""
    return isinstance(err, MemoryError) or type(err).__name__ == \
        "ResourceExhaustedError" or "RESOURCE_EXHAUSTED" in str(err)[:200]


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
        if _out_of_memory(err):
            print(f"zoo: error: out of memory ({type(err).__name__}): the model, "
                  "batch or image size does not fit this machine; lower "
                  "--batch-size or --image-size.", file=sys.stderr)
            return 1
        first = (str(err).strip().splitlines() or [""])[0][:300]
        print(f"zoo: error: internal error, unexpected {type(err).__name__}: {first} "
              "(rerun with ZOO_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
