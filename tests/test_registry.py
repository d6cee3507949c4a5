"""Registry, model_info, the command line and import hygiene."""

import json
import subprocess
import sys
import time

import pytest

import zoo
from helpers import subprocess_env
from zoo import cli


def test_list_models_filters():
    everything = zoo.list_models()
    assert everything == sorted(everything)
    # Every model that a file of zoo/models declares, and nothing else.
    import importlib
    from pathlib import Path
    files = Path(zoo.models.__file__).parent.glob("*.py")
    declared = [fields["name"] for f in files
                for fields in getattr(importlib.import_module(f"zoo.models.{f.stem}"),
                                      "ENTRIES", ())]
    assert sorted(declared) == everything and len(everything) >= 35
    assert zoo.list_models("resnext*") == [
        "resnext101_32x8d", "resnext29_16x64d", "resnext29_8x64d",
        "resnext50_32x4d"]
    assert zoo.list_models(family="xception") == ["xception"]
    assert set(zoo.list_models(family="mobilenet")) == {
        "mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075",
        "mobilenet_v1_100", "mobilenet_v2_050", "mobilenet_v2_050_cifar",
        "mobilenet_v2_100", "mobilenet_v2_140"}
    assert zoo.list_models("RESNET5*") == ["resnet50", "resnet50_v2", "resnet56"]
    with pytest.raises(ValueError, match="Unknown family 'densenet'"):
        zoo.list_models(family="densenet")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError) as err:
        zoo.create_model("resnet5")
    message = str(err.value)
    assert "Unknown model 'resnet5'" in message
    assert "resnet50" in message and "resnet56" in message
    assert "zoo.list_models()" in message


def test_model_info_fields():
    info = zoo.model_info("resnet20")
    assert info["family"] == "resnet"
    assert info["params"]["trainable"] == 269_722
    assert info["params"]["total"] == info["params"]["trainable"] + info["params"]["non_trainable"]
    assert info["default_input_size"] == (32, 32)
    assert info["min_input_size"] == (8, 8)
    assert info["macs"] == 40_551_040
    assert "He et al. 2016" in info["reference"]
    assert info["preprocessing"] in ("caffe", "tf", "torch")


def test_cli_list(capsys):
    assert cli.main(["list", "resnext29*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["resnext29_16x64d", "resnext29_8x64d"]
    assert cli.main(["list", "nothing*"]) == 1


def test_cli_info_prints_params_and_macs(capsys):
    assert cli.main(["info", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "25,636,712 total" in out
    assert "MACs:" in out and "3.86G" in out
    assert cli.main(["info", "resnet20", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"]["trainable"] == 269_722


def test_cli_usage_errors_exit_2(capsys):
    assert cli.main(["info", "resnet5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: Unknown model 'resnet5'")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["info", "resnet20", "--input-shape", "abc"])
    assert exit_.value.code == 2


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "zoo.cli", "list", "alexnet*"],
                            capture_output=True, text=True, timeout=120,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr
    assert "alexnet_cifar" in result.stdout


def test_import_zoo_has_no_tf_keras_or_tfmot():
    # (`compression` is not checked: urllib3 probes `compression.zstd`, the
    # Python 3.14 module name, and so may import our light package.)
    code = ("import sys, zoo; zoo.create_model('resnet20'); "
            "print(sorted(m for m in ('tf_keras', 'tensorflow_model_optimization',"
            " 'keras_tuner', 'tuning', 'zoo.tuning', 'zoo.compression')"
            " if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=120, env=subprocess_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_resnet152_builds_quickly():
    start = time.perf_counter()
    zoo.create_model("resnet152")
    assert time.perf_counter() - start < 15
