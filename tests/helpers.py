"""Helpers shared by the test modules (`from helpers import ...`; pytest
puts this folder on the path through conftest.py's folder)."""

import os


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


def subprocess_env(**extra):
    """The environment for child processes, as a user's shell would have it.

    Importing TF-MOT (in the compression tests) sets TF_USE_LEGACY_KERAS=1
    in this process; children must not inherit it.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(extra)
    return env
