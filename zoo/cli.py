"""The `zoo` command line.

Usage errors (bad flags, unknown names, invalid values) exit with status 2,
failures while running exit with status 1; both print one line starting with
"zoo: error:" instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class UsageError(Exception):
    """A mistake in what the user asked for (exit status 2)."""


def _fmt_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def cmd_list(args) -> int:
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
        tags = ", ".join(f"{name}.{t}" for t in sorted(e.weights)) or "-"
        print(f"{name:<{width}}  {e.family:<9}  {e.default_size:>3}px  "
              f"weights: {tags}")
    return 0


def cmd_info(args) -> int:
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
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Exact Keras 3 CNN architectures: list, inspect, train, "
                    "evaluate, export and compress them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="list the registered models",
                       description="List registered models (fnmatch PATTERN).")
    p.add_argument("pattern", nargs="?", default="*",
                   help="fnmatch pattern such as 'resnet*' (default: all)")
    p.add_argument("--family", choices=("alexnet", "mobilenet", "xception",
                                        "resnet", "resnext"))
    p.add_argument("--pretrained", action="store_true",
                   help="only models with shipped or downloadable weights")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="parameters, MACs and inputs of a model",
                       description="Build NAME and print its parameter count, "
                                   "multiply-accumulates and input sizes.")
    p.add_argument("name", help="registry name, e.g. resnet50")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError, TypeError) as err:
        print(f"zoo: error: {err}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as err:
        print(f"zoo: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
