"""The import graph of the three packages: no cycle (function-level imports
counted too) and the layering of docs/architectures.md ("Modules and layers")."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zoo", "tuning", "compression")
# The application layer of zoo: it may import tuning and compression (and
# zoo.compression / zoo.tuning are those folders under other names).
APPLICATION = {"zoo.cli", "zoo.cli_args", "zoo.cli_train", "zoo.cli_deploy", "zoo.cli_tune",
               "zoo.demo", "zoo.compression", "zoo.tuning"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(module: str, path: Path, known) -> set[str]:
    """The package modules `module` imports anywhere in its file: `from
    package import submodule` counts the submodule, `from package import
    name` the package's __init__."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            names |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                      for a in node.names}
    graph = set()
    for name in names:
        parts = name.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts and ".".join(parts) != module:
            graph.add(".".join(parts))
    return graph


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "zoo.convert" in graph["zoo.cli_train"]       # inside cmd_convert_weights
    assert "compression.bridge" in graph["compression.prune"]      # from . import bridge
    assert "zoo.budget" in graph["zoo.transfer"]


def test_no_import_cycle_in_the_packages():
    # transfer <-> training, torch_weights <-> weights and applications ->
    # zoo/__init__ -> applications were hidden by function-level imports.
    assert cycles(import_graph()) == []


def test_zoo_library_modules_never_import_tuning_or_compression():
    graph = import_graph()
    offending = {m: sorted(d for d in deps if d.split(".")[0] in ("tuning", "compression"))
                 for m, deps in graph.items()
                 if m.split(".")[0] == "zoo" and m not in APPLICATION}
    assert not {m: d for m, d in offending.items() if d}


def test_every_module_is_in_the_documented_layers():
    import re
    doc = (ROOT / "docs" / "architectures.md").read_text(encoding="utf-8")
    table = doc.split("## Modules and layers")[1].split("\n## ")[0]
    named = set(re.findall(r"`(\w+)`", table))
    undocumented = sorted(m for m in modules() if m.count(".") == 1
                          and m.split(".")[1] not in named | {"_alias", "models"}
                          and not m.startswith(("zoo.tuning", "zoo.compression")))
    assert not undocumented, undocumented


def test_modules_and_functions_stay_small():
    # Issue #29: modules of one concern (at most 400 lines) and no function
    # over 60 lines.
    long_functions, long_modules = [], []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            long_modules.append((name, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.end_lineno - node.lineno + 1 > 60:
                long_functions.append((name, node.name, node.end_lineno - node.lineno + 1))
    assert not long_modules and not long_functions, (long_modules, long_functions)


def family_branches(source: str) -> list[str]:
    """Comparisons of anything with a family's name (`entry.family ==
    "mobilenet"`, `family in ("resnet", "resnext")`) in Python source."""
    import zoo
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        constants = [c.value for o in operands
                     for c in ([o] if isinstance(o, ast.Constant) else
                               o.elts if isinstance(o, (ast.Tuple, ast.List, ast.Set)) else [])
                     if isinstance(c, ast.Constant)]
        found += [f"line {node.lineno}: {c}" for c in constants if c in zoo.FAMILIES]
    return found


def test_the_family_branch_finder_finds_one():
    assert family_branches('if entry.family == "mobilenet":\n    pass\n') == [
        "line 1: mobilenet"]
    assert family_branches('ok = family in ("resnet", "resnext")\n') == [
        "line 1: resnet", "line 1: resnext"]
    assert family_branches('same = a.family == b.family\n') == []


def test_no_family_branches_outside_the_family_modules():
    # Issue #29: what differs between families is declared by the family
    # (ModelEntry fields, weight records), not tested for by name elsewhere.
    branches = {name: found for name, path in modules().items()
                if not name.startswith("zoo.models")
                and (found := family_branches(path.read_text(encoding="utf-8")))}
    assert not branches, branches
