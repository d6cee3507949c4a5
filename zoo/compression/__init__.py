"""`zoo.compression`: the `compression` folder (see zoo/_alias.py)."""

from zoo._alias import alias

alias(globals(), "compression")
del alias
