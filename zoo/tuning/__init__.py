"""`zoo.tuning`: the `tuning` folder (see zoo/_alias.py)."""

from zoo._alias import alias

alias(globals(), "tuning")
del alias
