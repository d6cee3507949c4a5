"""The `zoo` command line end to end on digits, and kill-and-resume."""

import csv
import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import made_once, subprocess_env
from zoo import cli

ZOO = [sys.executable, "-m", "zoo.cli"]


def run(*args, timeout=600, **kw):
    return subprocess.run([*ZOO, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=subprocess_env(), **kw)


def _train(out):
    result = run("train", "resnet20", "--dataset", "digits", "--epochs", "3",
                 "--image-size", "16", "--lr", "3e-3", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy" in result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run for the whole test run (its tests only read it)."""
    return made_once(tmp_path_factory, "cli-trained-run", _train)


@pytest.mark.slow
def test_train_outputs_and_accuracy(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5           # chance is 0.1
    assert metrics["epochs"] == 3


@pytest.mark.slow
def test_evaluate_keras_and_exported_tflite(trained, tmp_path, capsys):
    # In this process (the command line's start-up is tested by the others).
    assert cli.main(["evaluate", str(trained / "model.keras"), "--dataset", "digits",
                     "--json"]) == 0
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    assert accuracy == pytest.approx(
        json.loads((trained / "metrics.json").read_text())["test_accuracy"], abs=1e-6)
    export = run("export", trained / "model.keras", "--out", tmp_path / "export",
                 "--formats", "saved_model,tflite,onnx", "--dataset", "digits")
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "export" / "saved_model" / "saved_model.pb").is_file()
    # Each file was run back with its own runtime and matched Keras.
    checked = json.loads((tmp_path / "export" / "equivalence.json").read_text())
    assert set(checked["formats"]) == {"saved_model", "tflite", "onnx"}
    assert checked["images"] == 16
    for fmt, r in checked["formats"].items():
        assert r["ok"] and 0 <= r["max_abs_diff"] <= 1e-4, (fmt, r)
        assert r["top1_agreement"] == 1.0
    assert export.stdout.count("top-1 agreement 100%") == 3
    tflite = tmp_path / "export" / "model.tflite"
    assert cli.main(["evaluate", str(tflite), "--dataset", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(accuracy,
                                                                             abs=0.01)


@pytest.mark.slow
def test_predict_prints_top_k_class_names(trained, tmp_path):
    from sklearn.datasets import load_digits
    digits = load_digits()
    path = tmp_path / "digit.png"
    Image.fromarray((digits.images[0] * 15).astype(np.uint8)).save(path)
    result = run("predict", trained / "model.keras", path, "--top-k", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == str(path) and len(lines) == 4
    assert lines[1].split()[-1] in [str(i) for i in range(10)]


def test_usage_errors_exit_2(capsys, tmp_path):
    assert cli.main(["train", "resnet20", "--dataset", "digitz", "--out",
                     str(tmp_path)]) == 2
    assert "Unknown dataset 'digitz'" in capsys.readouterr().err
    assert cli.main(["train", "resnet20", "--dataset", "digits", "--lr", "0",
                     "--out", str(tmp_path)]) == 2
    assert "Learning rate must be > 0" in capsys.readouterr().err
    assert cli.main(["train", "resnet20", "--dataset", "fashion_mnist", "--data-dir",
                     str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "missing.keras"), "--dataset",
                     "digits"]) == 2
    assert "does not exist" in capsys.readouterr().err
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(image)
    assert cli.main(["evaluate", str(image), "--dataset", "digits"]) == 2
    assert "not a .keras model file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        cli.main(["train"])
    assert err.value.code == 2


def test_help_texts(capsys):
    for command in ("list", "info", "train", "evaluate", "predict", "export", "demo"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: zoo " + command in capsys.readouterr().out


def test_command_line_hides_tensorflow_start_up_logging():
    quiet = run("list", "resnet2*")
    assert quiet.returncode == 0 and "resnet20" in quiet.stdout
    assert quiet.stderr == ""
    from zoo import startup
    assert not startup.running_command_line()      # pytest: a library user


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    result = run("demo", "--quick", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    # Our progress lines and the report only: no TensorFlow/LiteRT start-up
    # logging, no warnings.
    noise = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith("zoo: ")]
    assert noise == [], noise[:5]
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "Test accuracy" in report
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert summary["status"] == "done"
    # A folder that is not a demo folder is never touched (refused before
    # any work: in this process, without a second start-up).
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    assert cli.main(["demo", "--quick", "--out", str(other)]) == 2
    assert "not a zoo demo folder" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "precious"


def _epochs_logged(path):
    if not path.is_file():
        return 0
    with open(path) as f:
        return sum(1 for row in csv.DictReader(f) if row.get("epoch", "").isdigit())


@pytest.mark.slow
def test_sigkill_during_training_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", "resnet20", "--dataset", "digits", "--epochs", "6",
            "--image-size", "16", "--out", out]
    proc = subprocess.Popen([*ZOO, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=subprocess_env())
    deadline = time.time() + 300
    while _epochs_logged(out / "log.csv") < 2 and time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _epochs_logged(out / "log.csv")
    assert 2 <= done_before < 6
    assert not (out / "metrics.json").exists()

    result = run(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 1/6" not in result.stdout
    assert f"Epoch {done_before + 1}/6" in result.stdout
    with open(out / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [1, 2, 3, 4, 5, 6]
    model = keras.models.load_model(out / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 10)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 6


def test_demo_checks_its_own_accuracy(tmp_path, monkeypatch):
    from zoo import demo, training
    metrics = {"test_accuracy": 0.5, "test_loss": 2.0, "params": 1, "epochs": 12,
               "wall_time_s": 1.0, "dataset": {"num_test": 360, "image_shape": [16, 16, 1]},
               "optimizer_steps": 1020,
               "selection": "last"}
    monkeypatch.setattr(training, "train", lambda config, out, verbose=0: metrics)
    monkeypatch.setattr(demo, "_extra_steps", lambda: [])
    assert cli.main(["demo", "--out", str(tmp_path / "d")]) == 1
    assert (tmp_path / "d" / "report.md").is_file()
    metrics["test_accuracy"] = 0.97
    assert cli.main(["demo", "--out", str(tmp_path / "d")]) == 0


def test_train_flags_are_the_train_config_fields():
    # Each TrainConfig field is a `zoo train` flag of the same name (or one of
    # the documented exceptions), and each flag is a field or a CLI-only
    # option: a field added without a flag, or a flag whose value is never
    # used, fails here.
    import dataclasses
    from zoo import training
    parser = cli.build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items()
                 if a[0] == "train")[1]
    flags = {a.dest for a in train._actions} - {"help"}
    fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
    mapped = {cli._FLAG_OF.get(f, f) for f in fields - set(cli.NO_FLAG)}
    cli_only = {"out", "fast", "processes", "coordinator", "num_processes",
                "process_id", "overwrite"}
    assert mapped <= flags, mapped - flags
    assert flags - mapped == cli_only
    args = parser.parse_args(["train", "resnet20", "--dataset", "digits", "--out", "o",
                              "--lr", "0.02", "--jit", "--label-smoothing", "0.1"])
    config = cli._train_config(args)
    assert (config.model, config.lr, config.jit_compile, config.label_smoothing) == (
        "resnet20", 0.02, True, 0.1)


def test_distributed_tune_passes_every_option_but_placement_to_its_processes():
    from zoo import cli
    parser = cli.build_parser()
    cli._add_backend_option(parser)
    given = ["tune", "resnet20", "--dataset", "digits", "--out", "runs/t", "--workers",
             "2", "--chief-port", "5000", "--timeout", "60", "--final-steps", "5",
             "--final-augment", "none", "--no-pruning", "--no-confirm", "--limit", "96",
             "--max-trials", "3", "--backend", "tensorflow"]
    args = parser.parse_args(given)
    argv = ["tune", *cli._argv_for(args.parser, args, skip=cli._PLACEMENT)]
    assert not {"--workers", "--chief-port", "--timeout"} & set(argv)
    again = vars(parser.parse_args(argv))
    expected = {k: v for k, v in vars(args).items() if k != "parser"}
    for name in cli._PLACEMENT:
        expected[name] = again[name]            # back at their defaults
    assert expected["workers"] is None and expected["chief_port"] is None
    assert {k: v for k, v in again.items() if k != "parser"} == expected


@pytest.mark.parametrize("flags, confirm", [([], True), (["--no-confirm"], False)])
def test_tune_confirms_a_switch_unless_told_not_to(flags, confirm, tmp_path, monkeypatch):
    from zoo import cli
    from zoo import tuning
    seen = {}
    monkeypatch.setattr(tuning, "search", lambda name, dataset, **kw: seen.update(kw))
    cli.main(["tune", "resnet20", "--dataset", "digits", "--out", str(tmp_path), *flags])
    assert seen["confirm"] is confirm


def test_help_lists_the_registries(capsys):
    # The CLI's lists are read from the registries they repeat (the names
    # themselves are checked by the library, with a "did you mean"); the
    # tuner list is written out (importing tuning.search costs keras-tuner's
    # import on every command), so it is compared with TUNERS here.
    from tuning.search import TUNERS
    from zoo import cli
    from zoo.augment import PRESETS
    from zoo.optim import OPTIMIZERS, SCHEDULES
    from zoo.registry import FAMILIES

    def help_of(command):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        return " ".join(capsys.readouterr().out.split())

    train, tune, listed = help_of("train"), help_of("tune"), help_of("list")
    assert " | ".join(OPTIMIZERS) in train and " | ".join(SCHEDULES) in train
    assert " | ".join(PRESETS) in train
    assert ", ".join(FAMILIES) in listed
    assert "random | bayesian | hyperband | grid" in tune
    assert set(TUNERS) == {"random", "bayesian", "hyperband", "grid"}
    from tuning.plan import FINALISTS, MAX_TRIALS, TRIAL_MIN_STEPS
    assert f"trials to run (default {MAX_TRIALS}, fewer" in tune
    from tuning.cost import TRIAL_BUDGET
    assert f"(default {TRIAL_BUDGET:g} without --max-trials" in tune
    assert f"at least {TRIAL_MIN_STEPS} steps" in tune
    assert f"(default {FINALISTS}; 0:" in tune
