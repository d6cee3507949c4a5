"""The benchmark scripts keep working on tiny settings (no timing asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import subprocess_env

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
    assert "| mobilenet_v1_100 | zoo | mixed_bfloat16 |" in out and "matmul peak" in out
    assert "| mobilenet_v1_100 | keras.applications | float32 |" in out
    assert (tmp_path / "t.json").is_file()


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


@pytest.mark.parametrize("script,doc", [("deep_compression.py", "benchmarks.md"),
                                        ("transfer.py", "transfer.md"),
                                        ("search_quality.py", "tuning.md")])
def test_doc_tables_have_the_format_their_script_prints(script, doc):
    # These tables were once assembled by hand: other columns, another sign.
    # The script's TABLE (the header it prints) must head a table of the doc.
    import ast
    tree = ast.parse((ROOT / "benchmarks" / script).read_text(encoding="utf-8"))
    tables = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              and any(getattr(t, "id", None) == "TABLE" for t in n.targets)]
    assert len(tables) == 1, script
    lines = (ROOT / "docs" / doc).read_text(encoding="utf-8").splitlines()
    assert tables[0] in lines, (script, tables[0])
    width = tables[0].count(" | ") + 1
    rows = lines[lines.index(tables[0]) + 2:]
    rows = rows[:next((i for i, line in enumerate(rows) if not line.startswith("|")),
                      len(rows))]
    assert rows and all(line.count(" | ") + 1 == width for line in rows), rows
