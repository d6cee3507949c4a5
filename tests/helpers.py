"""Helpers shared by the test modules (`from helpers import ...`; pytest
puts this folder on the path through conftest.py's folder)."""

import os
import shutil


def small_input(name):
    """The smallest convenient input for a model: its minimum, at least 32."""
    import zoo
    entry = zoo.registry.get_entry(name)
    size = max(entry.min_size, 32)
    return (size, size, 3)


def one_per_family(by_layout=False):
    """One model of each registered family (its smallest input form first,
    then registration order), or with `by_layout` one of each family and
    layout (MobileNet v1/v2; ResNet's torch, keras and keras_v2 layouts).

    Read from the registry, so a new family is tested without a list to edit.
    """
    import zoo
    chosen = {}
    entries = sorted(zoo.registry.entries().items(), key=lambda kv: kv[1].default_size)
    for name, entry in entries:         # a stable sort keeps registration order
        key = entry.family
        if by_layout:
            key = (entry.family, getattr(entry.spec, "version", None),
                   getattr(entry.spec, "layout", None))
        chosen.setdefault(key, name)
    return list(chosen.values())


NARROW_RESNEXT = "resnext29_8x4d_narrow"
SHALLOW_RESNET = "resnet8_shallow"


def _register(entry, monkeypatch):
    from zoo import registry
    if monkeypatch is not None:
        monkeypatch.setitem(registry._REGISTRY, entry.name, entry)
    else:
        registry._REGISTRY.setdefault(entry.name, entry)
    return entry.name


def shallow_resnet(monkeypatch=None):
    """Registers ResNet-20's builder and layout with one block a stage
    (ResNet-8: 6n+2 layers at n=1; 75 k parameters instead of 0.27 M), under
    SHALLOW_RESNET, and returns that name: for tests of what a training run
    or a search does (resuming, selecting, racing, reporting), where any
    ResNet shows it and ResNet-20's depth only costs tracing time (a tiny
    run takes half the time). Tests of ResNet-20 itself (its accuracy,
    counts, shipped weights, the demo) keep ResNet-20. With `monkeypatch`
    the entry is removed after the test; without it (a child process) it
    stays."""
    import dataclasses
    from zoo import registry
    base = registry.get_entry("resnet20")
    entry = dataclasses.replace(base, name=SHALLOW_RESNET, weights={}, search={},
                                spec=dataclasses.replace(base.spec, depths=(1, 1, 1)))
    return _register(entry, monkeypatch)


def narrow_resnext(monkeypatch=None):
    """Registers ResNeXt-29 8×64d's builder and layout at a sixteenth of its
    widths (8 groups of 4 to 16 channels: 0.37 M parameters instead of 34 M),
    under NARROW_RESNEXT, and returns that name. The grouped convolutions
    are built, bridged and pruned by the same code; only the channel counts
    differ, at a size a test can afford. With `monkeypatch` the entry is
    removed after the test; without it (a child process) it stays."""
    import dataclasses
    from zoo import registry
    base = registry.get_entry("resnext29_8x64d")
    spec = dataclasses.replace(base.spec, widths=(16, 32, 64), group_width=16,
                               stem_width=16)
    entry = dataclasses.replace(base, name=NARROW_RESNEXT, spec=spec, weights={},
                                search={})
    return _register(entry, monkeypatch)


def subprocess_env(**extra):
    """The environment for child processes, as a user's shell would have it.

    Importing TF-MOT (in the compression tests) sets TF_USE_LEGACY_KERAS=1
    in this process; children must not inherit it.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(extra)
    return env


def made_once(tmp_path_factory, name, make):
    """A folder that `make(folder)` fills once per test run and every xdist
    worker reads: a module fixture would be made again by each worker that
    runs one of its tests (worksteal spreads a module's tests over the
    workers). The first worker to ask makes it under a file lock; the others
    wait for it. A failed `make` leaves no folder behind, so the next worker
    tries again and fails the same way."""
    import fcntl
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent                  # this run's folder, above the workers'
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".made").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                make(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            (folder / ".made").touch()
    return folder
