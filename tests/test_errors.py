"""docs/errors.md is the test data: every row of its command-line table is
run here and must end with its exit status and message, never a traceback;
every row of its Python table names a test that exists."""

import ast
import errno
import json
import re
import shlex
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import zoo
from zoo import cli, io

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
ROW = re.compile(r"^\|\s*(?P<id>[CP]\d+)\s*\|(?P<rest>.*)\|\s*$")


def _rows(prefix):
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m and m["id"].startswith(prefix):
            cells = [c.strip().replace("\\|", "|")
                     for c in re.split(r"(?<!\\)\|", m["rest"])]
            rows.append((m["id"], cells))
    return rows


def _code(cell):
    found = re.findall(r"`([^`]*)`", cell)
    assert found, f"expected `code` in {cell!r}"
    return found[0]


CLI_ROWS = _rows("C")
PY_ROWS = _rows("P")


def test_doc_tables_are_complete():
    assert len(CLI_ROWS) >= 50 and len(PY_ROWS) >= 20
    ids = [r[0] for r in CLI_ROWS + PY_ROWS]
    assert len(ids) == len(set(ids)), "duplicate row ids in docs/errors.md"
    commands = {c.split()[1] for c in (_code(r[1][0]) for r in CLI_ROWS) if " " in c}
    assert {"list", "info", "train", "evaluate", "predict", "export", "compress",
            "tune", "demo"} <= commands


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The placeholders of the command table, as real files."""
    root = tmp_path_factory.mktemp("errors")
    model = zoo.create_model("resnet20", input_shape=(8, 8, 1))
    model.save(root / "model.keras")
    model.export(str(root / "model.tflite"), format="litert", verbose=False)
    Image.new("L", (8, 8)).save(root / "image.png")
    (root / "notes.txt").write_text("not an image, not a model\n")
    (root / "fake.tflite").write_bytes(b"not a flatbuffer at all")
    data = (root / "model.keras").read_bytes()
    (root / "truncated.keras").write_bytes(data[: len(data) // 2])
    (root / "empty").mkdir()
    (root / "plain_file").write_text("x")
    (root / "other").mkdir()
    (root / "other" / "keep.txt").write_text("mine")
    np.savez(root / "noarrays.npz", a=np.zeros(3))
    spaces = {
        "space_unknown_optimizer.json": {"optimizer": {"values": ["adam", "lion"]}},
        "space_empty_choices.json": {"optimizer": {"values": []}},
        "space_min_gt_max.json": {"learning_rate": {"min": 0.1, "max": 0.001}},
        "space_unknown_knob.json": {"learning_rat": {"min": 1e-4, "max": 1e-2}},
    }
    for name, space in spaces.items():
        (root / name).write_text(json.dumps(space))
    (root / "space_not_json.json").write_text("optimizer: [adam")
    _bad_data(root)
    return root


def _bad_data(root):
    """The data placeholders: folders and .npz files with one problem each."""
    for split, classes in (("train", ("cat", "dog")), ("test", ("cat", "dog", "eel"))):
        for label in classes:
            (root / "mismatched" / split / label).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8)).save(root / "mismatched" / split / label / f"{i}.png")
    for label in ("cat", "dog"):
        (root / "broken" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8)).save(root / "broken" / label / f"{i}.png")
    (root / "broken" / "dog" / "broken.png").write_text("not an image")
    x, y = np.zeros((6, 8, 8), np.uint8), np.arange(6) % 2
    for name, changes in (("fractional", dict(y_train=np.array([0, 0.5, 1, 0, 1, 0]))),
                          ("unequal", dict(y_train=np.arange(5) % 2)),
                          ("nan", dict(x_train=np.full((6, 8, 8), np.nan, np.float32))),
                          ("sizes", dict(x_test=np.zeros((4, 10, 10), np.uint8))),
                          ("one_hot", dict(y_train=np.eye(2)[y]))):
        np.savez(root / f"{name}.npz", **{**dict(x_train=x, y_train=y, x_test=x[:4],
                                                 y_test=y[:4]), **changes})
    y = np.array([0] * 6 + [1] * 6 + [2] * 2)
    np.savez(root / "small_class.npz", x_train=np.zeros((14, 8, 8), np.uint8),
             y_train=y, x_test=np.zeros((4, 8, 8), np.uint8), y_test=y[:4] % 2)
    (root / "damaged_run").mkdir()
    (root / "damaged_run" / "config.json").write_text('{"model": "resnet20", "epo')
    (root / "card").mkdir()
    (root / "card" / "model.keras").write_bytes((root / "model.keras").read_bytes())
    (root / "card" / "metrics.json").write_text('{"dataset": {"class_names": ["a", ')


PLACEHOLDERS = {
    "MODEL": "model.keras", "TFLITE": "model.tflite", "IMAGE": "image.png",
    "TEXT": "notes.txt", "FAKE_TFLITE": "fake.tflite", "TRUNCATED": "truncated.keras",
    "EMPTY_DIR": "empty", "FILE": "plain_file", "OTHER_DIR": "other",
    "MISSING": "does/not/exist", "NO_ARRAYS_NPZ": "noarrays.npz",
    "MISMATCHED_FOLDER": "mismatched", "BROKEN_IMAGE_FOLDER": "broken",
    "FRACTIONAL_NPZ": "fractional.npz", "UNEQUAL_NPZ": "unequal.npz",
    "NAN_NPZ": "nan.npz", "SIZES_NPZ": "sizes.npz", "SMALL_CLASS_NPZ": "small_class.npz",
    "DAMAGED_RUN": "damaged_run", "CARD_MODEL": "card/model.keras",
    "ONE_HOT_NPZ": "one_hot.npz",
}


def _argv(command, root, out):
    def sub(token):
        token = re.sub(r"\bSPACE_([A-Z_]+)\b",
                       lambda m: str(root / f"space_{m[1].lower()}.json"), token)
        token = re.sub(r"\bOUT\b", str(out), token)
        for key in sorted(PLACEHOLDERS, key=len, reverse=True):
            token = re.sub(rf"\b{key}\b", str(root / PLACEHOLDERS[key]), token)
        return token
    words = shlex.split(command)
    assert words[0] == "zoo"
    return [sub(w) for w in words[1:]]


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_command_line_row(row, files, tmp_path, capsys):
    _, (command, status, message, *_) = row
    argv = _argv(_code(command), files, tmp_path / "out")
    try:
        code = cli.main(argv)
    except SystemExit as exit_:           # argparse's own usage errors
        code = exit_.code
    captured = capsys.readouterr()
    assert code == int(status), (captured.out + captured.err)[-2000:]
    expected = _code(message)
    assert expected in captured.err + captured.out
    assert "Traceback" not in captured.err


def _test_strings(path, name):
    """The string constants of test `name` in `path` (adjacent literals
    joined, as Python joins them), regex escapes removed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not found:
        return None
    return [n.value.replace("\\", "") for n in ast.walk(found[0])
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


@pytest.mark.parametrize("row", PY_ROWS, ids=[r[0] for r in PY_ROWS])
def test_python_row_test_asserts_its_message(row):
    # Each row names a test, and that test asserts the row's message: every
    # `quoted` phrase of "the user sees" (those with a space; a name such as
    # `DataError` is not a message) is in the test's strings, each part of
    # it between "…" in one string. The test itself checks the message at
    # run time, so the table cannot drift from what users see.
    _, cells = row
    ref = _code(cells[-1])
    file, _, name = ref.partition("::")
    path = Path(__file__).resolve().parent / Path(file).name
    assert path.is_file(), ref
    strings = _test_strings(path, name)
    assert strings is not None, ref
    phrases = [p for p in re.findall(r"`([^`]*)`", cells[-2]) if " " in p]
    for phrase in phrases:
        for part in filter(None, (p.strip() for p in phrase.split("…"))):
            assert any(part in s for s in strings), (ref, part)


# Faults that the tables cannot express.

def test_full_disk_while_writing_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"accuracy": 0.9})
    real_open = open

    def full_disk_open(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        if str(path).startswith(str(tmp_path / ".metrics.")):
            f.write("{\"accur")
            f.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return f

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(OSError, match="No space left"):
        io.write_json(target, {"accuracy": 0.1})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_full_disk_during_export_keeps_previous_model(files, tmp_path, monkeypatch,
                                                     capsys):
    out = tmp_path / "export"
    out.mkdir()
    (out / "model.tflite").write_bytes(b"previous good model")

    def export(self, path, format=None, verbose=None):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "export", export)
    code = cli.main(["export", str(files / "model.keras"), "--out", str(out),
                     "--formats", "tflite"])
    assert code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "model.tflite").read_bytes() == b"previous good model"
    assert sorted(p.name for p in out.iterdir()) == ["model.tflite"]


@pytest.mark.parametrize("error", [KeyError("internal"), ValueError("from a library"),
                                   TypeError("from a library")])
def test_unexpected_errors_are_one_line_with_debug_hint(error, monkeypatch, capsys):
    # A ValueError or TypeError that our validation did not raise is a bug
    # (it used to be reported as a usage error, exit 2, with no traceback).
    def broken(args):
        raise error

    monkeypatch.setattr(cli, "cmd_list", broken)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"zoo: error: internal error, unexpected {type(error).__name__}")
    assert "ZOO_DEBUG=1" in err
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(type(error)):
        cli.main(["list"])


def test_debug_shows_the_traceback_of_every_error(monkeypatch):
    from zoo.errors import InputError
    for error in (InputError("bad value"), OSError("disk full"), RuntimeError("x"),
                  ImportError("no module")):
        def broken(args, error=error):
            raise error
        monkeypatch.setattr(cli, "cmd_list", broken)
        monkeypatch.setenv("ZOO_DEBUG", "1")
        with pytest.raises(type(error)):
            cli.main(["list"])
        monkeypatch.delenv("ZOO_DEBUG")
        assert cli.main(["list"]) == (2 if isinstance(error, InputError) else 1)


def test_unicode_and_spaces_in_paths(files, tmp_path, capsys):
    folder = tmp_path / "mes modèles ü 模型"
    folder.mkdir()
    (folder / "mon modèle.keras").write_bytes((files / "model.keras").read_bytes())
    image = folder / "chiffre ü.png"
    image.write_bytes((files / "image.png").read_bytes())
    assert cli.main(["evaluate", str(folder / "mon modèle.keras"), "--dataset",
                     "digits", "--limit", "32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 32
    assert cli.main(["predict", str(folder / "mon modèle.keras"), str(image),
                     "--top-k", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == str(image)
    assert cli.main(["export", str(folder / "mon modèle.keras"), "--out",
                     str(folder / "sortie é"), "--formats", "tflite"]) == 0
    assert (folder / "sortie é" / "model.tflite").read_bytes()[4:8] == b"TFL3"


@pytest.mark.parametrize("argv", [["-m", "zoo.cli", "list"], ["-c", "import zoo"]],
                         ids=["command", "import"])
def test_unknown_keras_backend_is_named(argv):
    # Keras' own message was a traceback: "Unable to import backend : foo".
    import subprocess
    import sys
    from helpers import subprocess_env
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          env=subprocess_env(KERAS_BACKEND="foo"), timeout=120)
    assert "KERAS_BACKEND='foo' is not a Keras backend" in done.stderr
    if argv[0] == "-m":
        assert done.returncode == 2 and "Traceback" not in done.stderr
    else:
        assert "InputError" in done.stderr


def test_lambda_models_are_refused(tmp_path):
    from zoo import inference
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(inference.ModelFileError, match="Lambda"):
        inference.load_keras(tmp_path / "lambda.keras")
