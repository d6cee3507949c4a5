"""The benchmark scripts keep working on tiny settings (no timing asserted)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]


def bench(script, *args, timeout=600):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                            capture_output=True, text=True, timeout=timeout,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_throughput_tiny(tmp_path):
    out = bench("throughput.py", "--models", "mobilenet_v1_100", "--size", "32",
                "--batch", "4", "--steps", "1", "--reps", "1",
                "--precision", "float32,mixed_bfloat16", "--json", str(tmp_path / "t.json"))
    assert "| mobilenet_v1_100 32px b4 | zoo mixed_bfloat16 |" in out and "matmul peak" in out
    assert "| mobilenet_v1_100 32px b4 | keras.applications float32 | " in out
    # The saved result prints the same tables again.
    again = bench("throughput.py", "--markdown", str(tmp_path / "t.json"))
    assert again.strip() and again.strip() in out


@pytest.mark.slow
def test_pipeline_tiny():
    out = bench("pipeline.py", "--datasets", "digits", "--image-size", "8",
                "--batches", "3", "--batch", "32")
    assert "| digits |" in out


@pytest.mark.slow
def test_tuning_tiny(tmp_path):
    out = bench("tuning.py", "--trials", "2", "--epochs", "2", "--image-size", "8",
                "--limit", "128", "--out", str(tmp_path))
    assert "| hyperband + median stopping |" in out and "| random |" in out
    assert "| random + median stopping |" in out


@pytest.mark.slow
def test_tuning_memory_tiny(tmp_path):
    out = bench("tuning.py", "--memory-trials", "2", "--image-size", "8",
                "--limit", "128", "--out", str(tmp_path))
    assert "| 2 |" in out and " MB |" in out


@pytest.mark.slow
def test_compression_tiny(tmp_path):
    out = bench("compression.py", "--dataset", "digits", "--limit", "96", "--epochs", "1",
                "--recipes", "prune80_int8", "--latency-runs", "3", "--out", str(tmp_path))
    assert "| prune80_int8 |" in out


def test_docs_name_every_benchmark_script_and_only_existing_ones():
    # docs/benchmarks.md once listed a script that had been deleted.
    import re
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    listed = set(re.findall(r"`(\w+\.py)`", (ROOT / "docs" / "benchmarks.md").read_text(
        encoding="utf-8").split("## ", 1)[0]))
    assert listed == scripts, (sorted(listed - scripts), sorted(scripts - listed))
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        named = set(re.findall(r"benchmarks/(\w+\.py)", doc.read_text(encoding="utf-8")))
        assert named <= scripts, (doc.name, sorted(named - scripts))


# Tables of docs/ and README that hold no measurement (reference tables).
REFERENCE_TABLES = {
    "| family | models | layout |",
    "| preset | chain | fine-tuning (default optimizer steps) |",
    "| step | function | notes |",
    "| # | command | exit | the user sees (part of the message) |",
    "| # | function | what was tried | what the user sees | test |",
    "| fault | what happens | test |",
    "| source | where the data comes from |",
    "| preset | layers |",
    "| knob | focused range | first trial |",
    "| knob | default range | exists only when |",
    "| field | value | what it means |",      # zoo.recipe (tests/test_recipe.py)
    "| layer | modules |",                     # tests/test_imports.py
    "| source | tags | file found in | checked by |",   # tests/test_weight_records.py
}
# A measured table is announced by the line above it: the script that prints
# it and, when it was generated from a saved result, that result.
MARK = re.compile(r"<!-- printed by `python benchmarks/(\w+\.py)( --markdown( \S+)?)?` -->")


def _doc_tables():
    """(doc, line number, marker line, table lines) of every markdown table."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = doc.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("|") and i + 1 < len(lines) \
                    and lines[i + 1].startswith("|---") \
                    and not (i and lines[i - 1].startswith("|")):
                end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")),
                           len(lines))
                yield doc.name, i + 1, lines[i - 1] if i else "", lines[i:end]


def _script_tables(script):
    """The TABLE* constants of a benchmark script (the headers it prints)."""
    tree = ast.parse((ROOT / "benchmarks" / script).read_text(encoding="utf-8"))
    return [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
            and any(getattr(t, "id", "").startswith("TABLE") for t in n.targets)]


def test_every_measured_table_is_printed_by_a_script_in_its_format():
    # Tables were once assembled by hand: other columns, another sign, rows
    # of several runs. Each measured table now names the script that prints
    # it, and has one of that script's headers and its number of columns.
    problems = []
    for doc, number, before, table in _doc_tables():
        where = f"{doc}:{number}"
        if table[0] in REFERENCE_TABLES:
            continue
        mark = MARK.fullmatch(before)
        if not mark:
            problems.append(f"{where}: no '<!-- printed by ... -->' line above")
            continue
        headers = _script_tables(mark.group(1))
        if not any(table[0].startswith(h) for h in headers):
            problems.append(f"{where}: {mark.group(1)} prints no such header")
        width = table[0].count(" | ")
        if table[1].count("|") != width + 2 or any(row.count(" | ") != width
                                                    for row in table[2:]):
            problems.append(f"{where}: rows of another width")
    assert not problems, problems


def test_generated_tables_are_what_their_script_prints_from_the_saved_result():
    # A table marked `--markdown RESULT` is the script's rendering of the
    # committed result, line for line (edit the result, not the table).
    checked = 0
    for doc, number, before, table in _doc_tables():
        mark = MARK.fullmatch(before)
        if not mark or not mark.group(2):
            continue
        args = ["--markdown"] + ([mark.group(3).strip()] if mark.group(3) else [])
        printed = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / mark.group(1)), *args],
            capture_output=True, text=True, cwd=ROOT, env=subprocess_env(), timeout=300)
        assert printed.returncode == 0, (doc, number, printed.stderr[-2000:])
        out = printed.stdout.splitlines()
        assert table[0] in out, (doc, number, table[0])
        start = out.index(table[0])
        assert out[start:start + len(table)] == table, (doc, number)
        checked += 1
    assert checked >= 5, checked


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")
                                          if "TABLE" in p.read_text(encoding="utf-8")))
def test_every_script_with_tables_has_one_in_the_docs(script):
    headers = [t[0] for _, _, before, t in _doc_tables()
               if (m := MARK.fullmatch(before)) and m.group(1) == script]
    assert any(h.startswith(table) for h in headers
               for table in _script_tables(script)), script


def test_the_architecture_table_is_what_the_models_are_now():
    # docs/architectures.md's table is generated from a saved result; the
    # models built now must still have its counts (a few, to stay fast).
    import json
    import zoo
    rows = {r["model"]: r for r in json.loads(
        (ROOT / "docs" / "tables" / "architectures.json").read_text())["rows"]}
    assert set(rows) == set(zoo.list_models())
    for name in ("resnet20", "mobilenet_v2_050_cifar", "alexnet_cifar"):
        info = zoo.model_info(name)
        assert (info["params"]["total"], info["params"]["trainable"], info["macs"]) == \
            (rows[name]["params"], rows[name]["trainable"], rows[name]["macs"]), name


def test_a_saved_search_is_reused_only_under_the_same_arguments_and_recipe(tmp_path,
                                                                          monkeypatch):
    # benchmarks/small_data.py keeps a finished search's result in
    # bench.json; a rerun with other arguments, or after the recipe
    # changed, searches again (from scratch) instead of reusing it.
    import dataclasses
    import runpy

    from zoo import recipe, tuning
    calls = []

    def fake_search(model, dataset, *, out, seed, overwrite=False, **fields):
        calls.append({"overwrite": overwrite, **fields})
        return {"test_accuracy": 0.5 + len(calls) / 100, "trials": [],
                "final": {"best": {"optimizer_steps": 10}}}

    monkeypatch.setattr(tuning, "search", fake_search)
    tune_run = runpy.run_path(str(ROOT / "benchmarks" / "small_data.py"))["tune_run"]
    folder = tmp_path / "search"
    folder.mkdir()
    first = tune_run(tmp_path / "a.npz", 0, {}, folder)
    assert tune_run(tmp_path / "a.npz", 0, {}, folder)["test_accuracy"] == \
        first["test_accuracy"] == 0.51 and len(calls) == 1
    assert tune_run(tmp_path / "a.npz", 0, {"budget": 2}, folder)["test_accuracy"] == 0.52
    assert calls[-1] == {"overwrite": True, "budget": 2}
    other = dataclasses.replace(recipe.RECIPE, schedule="warmup_cosine")
    monkeypatch.setattr(recipe, "RECIPE", other)
    assert tune_run(tmp_path / "a.npz", 0, {"budget": 2}, folder)["test_accuracy"] == 0.53
    assert len(calls) == 3
