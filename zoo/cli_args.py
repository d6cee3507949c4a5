"""What every `zoo` command shares: the usage error, the sub-command
declaration (its description is the handler's docstring), the data and
output options, and the argument list that reproduces a parsed command
(for the processes a command starts)."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """A mistake in the command line itself (exit status 2); see zoo.errors
    for the errors the library's validation raises."""


def fmt_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def add_data_args(p, required=True, out=None):
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


def shape(text: str):
    try:
        dims = tuple(int(d) for d in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected H,W,C such as 32,32,3; got {text!r}") from None
    if len(dims) != 3:
        raise argparse.ArgumentTypeError(
            f"expected three numbers H,W,C; got {text!r}")
    return dims


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that keeps the actions `add_argument` returns, so
    that `argv_for` reads a command's options without argparse's private
    `_actions` list."""

    def __init__(self, *args, **kwargs):
        self.declared = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.declared.append(action)
        return action


def command(sub, name, handler, help):
    """The sub-command `name` that `handler` runs; its description is the
    handler's docstring."""
    description = " ".join((handler.__doc__ or "").split())
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=handler, parser=p)
    return p


def argv_for(parser, args, skip=()):
    """The arguments of `parser` that parse to `args`, read from the parser's
    own declarations (options at their defaults and those in `skip` left
    out): a flag added to the parser is passed on without a second list."""
    positional, options = [], []
    for action in parser.declared:
        value = getattr(args, action.dest, None)
        if action.dest in skip or action.dest == "help" or value is None \
                or value == action.default:
            continue
        if not action.option_strings:
            positional.append(str(value))
        elif action.nargs == 0 and action.const is True:       # store_true
            options.append(max(action.option_strings, key=len))
        elif isinstance(action, argparse.BooleanOptionalAction):
            options.append(action.option_strings[0 if value else 1])
        else:
            options += [max(action.option_strings, key=len), str(value)]
    return positional + options
