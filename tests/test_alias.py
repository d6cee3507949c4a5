"""`zoo.compression` and `zoo.tuning` (zoo/_alias.py): the package's folders
under names that Python 3.14's standard library cannot shadow."""

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]

# Runs where a standard-library-like `compression` package comes first on
# the path, as Python 3.14's does (PEP 784): `import compression` finds it,
# and everything of ours still works through `zoo.compression`.
SHADOWED = """
import sys
from pathlib import Path
import compression
assert getattr(compression, "STANDARD_LIBRARY", False), compression.__file__
import numpy as np
import zoo.compression, zoo.tuning
from zoo import data as data_lib
from zoo.compression import pipeline
search = sys.modules["zoo.tuning.search"]
root = Path(sys.argv[1])
assert Path(pipeline.__file__).parent == root / "compression", pipeline.__file__
assert Path(search.__file__).parent == root / "tuning", search.__file__
assert "_CHILD" in vars(search) and "zoo.tuning.search" in search._CHILD
import zoo
data = data_lib.load("digits", batch_size=32, limit=64, image_size=8)
model = zoo.create_model("resnet20", input_shape=(8, 8, 1))
report = zoo.compression.compress(model, data, out=sys.argv[2], quantize="dynamic",
                                  latency_runs=1)
print("variants", [v["name"] for v in report["variants"]])
print("tuners", sorted(zoo.tuning.TUNERS))
# Nothing was imported under the shadowed names (an editable installation's
# finder would still find compression.finetune beside a shadowing package).
# (compression.zstd is the stand-in's: libraries probe for it.)
strays = [m for m in sys.modules if m.startswith(("compression.", "tuning."))
          and m != "compression.zstd" or m == "tuning"]
assert not strays, strays
"""


@pytest.fixture
def stdlib_like(tmp_path):
    """A folder holding a stand-in of the standard library's `compression`."""
    package = tmp_path / "stdlib" / "compression"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Stand-in for Python 3.14\'s '
                                         'compression package."""\nSTANDARD_LIBRARY = True\n')
    (package / "zstd.py").write_text("")
    return package.parent


@pytest.mark.slow
def test_zoo_compression_and_tuning_work_where_the_standard_library_shadows_them(
        stdlib_like, tmp_path):
    env = subprocess_env(PYTHONPATH=str(stdlib_like))
    # Run from tmp_path: `python -c` puts the working directory first on
    # the path, and the repository's own compression/ would come first.
    result = subprocess.run([sys.executable, "-c", SHADOWED, str(ROOT), str(tmp_path / "c")],
                            capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "variants ['float', 'float LiteRT', 'compressed']" in result.stdout, result.stdout
    assert "tuners ['bayesian', 'grid', 'hyperband', 'random']" in result.stdout
    # The command line imports the same names: its compress and tune
    # commands parse and refuse a bad value, rather than failing to import.
    for argv, message in ((["compress", "resnet20.keras", "--preset", "nope"], "nope"),
                          (["tune", "resnet20", "--dataset", "digits", "--out", "t", "--max-trials", "0"],
                           "max_trials")):
        done = subprocess.run([sys.executable, "-m", "zoo.cli", *argv], capture_output=True,
                              text=True, timeout=120, env=env, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (argv, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, done.stderr[-2000:]


def test_both_names_are_the_same_files():
    import compression
    import tuning

    import zoo.compression
    import zoo.tuning
    from zoo import compression as by_from
    assert by_from is zoo.compression
    assert zoo.compression.__path__ == [str(Path(compression.__file__).parent)]
    assert zoo.tuning.__path__ == [str(Path(tuning.__file__).parent)]
    assert zoo.compression.__all__ == compression.__all__
    with pytest.raises(AttributeError, match="module 'zoo.compression' has no attribute"):
        zoo.compression.nothing_here


def test_a_missing_folder_is_named(tmp_path):
    from zoo._alias import alias
    with pytest.raises(ImportError, match="package folder .*nowhere.* is missing"):
        alias({"__name__": "zoo.nowhere"}, "nowhere")
