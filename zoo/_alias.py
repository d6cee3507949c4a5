"""The `compression` and `tuning` folders under the `zoo` namespace.

Python 3.14's standard library has a `compression` package (PEP 784), and
it comes first on `sys.path`: there `import compression` finds the
standard library's. `zoo.compression` and `zoo.tuning` are packages whose
`__path__` is the folder beside `zoo/` (in a checkout and in an
installation alike: setuptools installs the three folders side by side), so
their modules are found there and no standard-library name can shadow
them. Those modules import each other relatively; under either name they
are the same files (but, imported under both names in one process, two
copies of the modules).
"""

from __future__ import annotations

from pathlib import Path


def alias(namespace: dict, folder: str) -> None:
    """Makes the package whose globals are `namespace` the folder `folder`
    beside zoo/: its `__path__`, then its `__init__.py` run in it."""
    root = Path(__file__).resolve().parent.parent / folder
    init = root / "__init__.py"
    if not init.is_file():
        raise ImportError(f"{namespace['__name__']}: the package folder {root} is "
                          "missing; reinstall cnn-zoo.")
    namespace["__path__"] = [str(root)]
    namespace["__file__"] = str(init)
    exec(compile(init.read_text(encoding="utf-8"), str(init), "exec"), namespace)
