import os

# Quiet TensorFlow and keep every test on the TensorFlow backend unless a
# test starts a subprocess with another one.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

_JAX_CACHE = "JAX_COMPILATION_CACHE_DIR"


def pytest_configure(config):
    """One JAX compilation cache for the whole run (its xdist workers and the
    JAX processes the tests start inherit it): every JAX process builds and
    compiles the same few models, and a cached compilation takes a tenth of
    the time (resnet20's build 5.0 s -> 0.4 s). Made fresh for each run, so
    a run never depends on an earlier one."""
    if hasattr(config, "workerinput") or _JAX_CACHE in os.environ:
        return
    import tempfile
    os.environ[_JAX_CACHE] = tempfile.mkdtemp(prefix="zoo-tests-jax-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    config._zoo_jax_cache = os.environ[_JAX_CACHE]


def pytest_unconfigure(config):
    folder = getattr(config, "_zoo_jax_cache", None)
    if folder:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
        del os.environ[_JAX_CACHE]


def pytest_collection_modifyitems(config, items):
    """The `slow` tests (end to end, a minute or more each) first, shared out
    so that every xdist worker starts with its part of them.

    worksteal gives each worker a contiguous share of the collection and
    lets idle workers take the tail of another's queue. With every slow
    test at the front of the collection, one worker started them all and
    the others took them from it late, one long test after another (the
    last minutes of a run on one core). Here share k is its slow tests
    (every n-th, in file order) followed by quick ones, which are what
    idle workers steal."""
    slow = [item for item in items if item.get_closest_marker("slow")]
    quick = [item for item in items if not item.get_closest_marker("slow")]
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    ordered, left = [], len(items)
    for k in range(workers):
        size = left // (workers - k)        # xdist's split: worksteal.py
        mine = slow[k::workers][:size]
        take = size - len(mine)
        ordered += mine + quick[:take]
        quick, left = quick[take:], left - size
    ordered += [item for item in slow if item not in ordered] + quick
    items[:] = ordered


@pytest.fixture
def rng():
    return np.random.default_rng(0)
