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


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type."""
