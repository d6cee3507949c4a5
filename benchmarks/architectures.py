"""Every registered model at its defaults: inputs, parameters and
multiply-accumulates (the table of docs/architectures.md).

    python benchmarks/architectures.py [--json docs/tables/architectures.json]
    python benchmarks/architectures.py --markdown docs/tables/architectures.json

Builds each model with `zoo.model_info(name)` (its default input and
classes; about two minutes on 2 cores for all of them) and prints a
markdown table. `tests/test_benchmarks.py` checks that the doc's table is
this script's rendering of the committed JSON, and that models built now
still have the recorded counts.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

common = runpy.run_path(str(Path(__file__).with_name("common.py")))

# The table of docs/architectures.md, as printed here.
TABLE = ("| model | family | default input | min input | params (total) | trainable "
         "| MACs |")


def measure() -> list[dict]:
    import zoo
    rows = []
    for name in zoo.list_models():
        info = zoo.model_info(name)
        rows.append({"model": name, "family": info["family"],
                     "default_input": info["default_input_size"][0],
                     "min_input": info["min_input_size"][0],
                     "params": info["params"]["total"],
                     "trainable": info["params"]["trainable"], "macs": info["macs"]})
        print(rows[-1], flush=True)
    return rows


def markdown(result) -> str:
    lines = [TABLE, "|---|---|---|---|---|---|---|"]
    lines += [f"| `{r['model']}` | {r['family']} | {r['default_input']} | {r['min_input']} "
              f"| {r['params']:,} | {r['trainable']:,} | {r['macs'] / 1e9:.3f} G |"
              for r in result["rows"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = common["parse"](parser, markdown)
    if args is None:
        return
    result = {"machine": common["machine"](), "rows": measure()}
    print(markdown(result))
    common["dump"](args.json, result)


if __name__ == "__main__":
    main()
