"""The package's error types.

`InputError` is what our own validation rejects (a bad argument, file or
dataset): the command line reports it as a usage error (exit status 2).
Every other exception is either a failure while running (`ZooError`
subclasses such as `zoo.training.TrainingError`, `OSError`: exit 1) or a
bug, reported as an internal error (exit 1, the traceback with ZOO_DEBUG=1).
`InputError` is a `ValueError`, so `except ValueError` keeps working.
"""


class ZooError(Exception):
    """Base of the errors this package raises on purpose."""


class InputError(ZooError, ValueError):
    """An argument, file or dataset that our validation rejects."""


class WeightsError(InputError):
    """A weights file or tag that cannot be used for the requested model
    (also `zoo.weights.WeightsError`)."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type."""


def check_positive_int(value, name, error=InputError):
    """`value` as an int, or `error` saying "<name> must be an integer >= 1"."""
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise error(f"{name} must be an integer >= 1; got {value!r}.")
    return int(value)


def check_seed(value, name="seed"):
    """`value` as an int, or InputError: a random seed is a whole number in
    [0, 2**32 - 1] (what NumPy and Keras accept)."""
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 0 <= value < 2 ** 32:
        raise InputError(f"{name} must be a whole number in [0, 2**32 - 1]; got {value!r}.")
    return int(value)


def did_you_mean(value, choices, n=1) -> str:
    """" Did you mean: a, b?" naming the choices closest to `value`, or ""."""
    import difflib
    close = difflib.get_close_matches(str(value), list(choices), n=n)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def require(module: str, message: str, error=InputError):
    """Imports an optional dependency, or raises `error(message)` (which says
    what to install) instead of an ImportError."""
    import sys
    try:
        __import__(module)
    except ImportError:
        raise error(message) from None
    return sys.modules[module]
