"""torchvision/timm checkpoints: parity with torchvision's logits, refusals.

The references in tests/data/torchvision/ were made once with torch by
benchmarks/torchvision_reference.py; the weights are regenerated here from
the same seeded generator, so neither torch nor the network is needed.
"""

import importlib.util
import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import zoo
from zoo import torch_weights, weights as weights_lib
from zoo.weights import WeightsError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "torchvision"
REFERENCE = runpy.run_path(str(ROOT / "benchmarks" / "torchvision_reference.py"))
PARITY = sorted(REFERENCE["MODELS"])


def reference_file(tmp_path, name, *, edit=None):
    meta = json.loads((DATA / f"{name}.json").read_text())
    state = REFERENCE["seeded_state_dict"](meta["keys"])
    if edit:
        edit(state)
    path = tmp_path / f"{name}.safetensors"
    save_file(state, str(path))
    return path, meta


@pytest.mark.parametrize("name", PARITY)
def test_logits_equal_torchvision(name, tmp_path):
    path, meta = reference_file(tmp_path, name)
    size = meta["input_size"]
    model = zoo.create_model(name, weights=path, input_shape=(size, size, 3),
                             classifier_activation=None)
    assert model.output_shape == (None, meta["num_classes"])   # read from the file
    logits = np.asarray(model(REFERENCE["reference_input"](size), training=False))
    expected = np.load(DATA / f"{name}_logits.npy")
    assert np.all(np.isfinite(logits))
    assert np.abs(expected).max() > 0.1          # a non-trivial reference
    relative = np.abs(logits - expected).max() / np.abs(expected).max()
    assert relative <= 1e-4, relative


def test_torchvision_names_cover_every_layer_of_every_supported_model():
    names = torch_weights.supported_models()
    assert {"alexnet", "resnet18", "resnet34", "tv_resnet50", "tv_resnet101",
            "tv_resnet152", "resnext50_32x4d", "resnext101_32x8d", "vgg11"} == set(names)
    for name in ("resnet34", "resnext101_32x8d"):
        model = zoo.create_model(name, num_classes=10, input_shape=(32, 32, 3))
        modules = torch_weights.module_names(model, name)
        assert len(set(modules.values())) == len(modules)       # one to one
        assert modules["conv3_block1_0_bn"] == "layer2.0.downsample.1"
        assert modules["conv4_block3_2_bn"] == "layer3.2.bn2"


def _drop(key):
    return lambda state: state.pop(key)


def _extra(state):
    state["layer4.2.conv1.weight"] = np.zeros((512, 512, 1, 1), np.float32)


def _reshape(state):
    state["layer2.0.downsample.1.running_var"] = np.ones(7, np.float32)


@pytest.mark.parametrize("edit, message", [
    (_drop("layer1.1.bn2.running_mean"), "missing key 'layer1.1.bn2.running_mean'"),
    (_extra, "extra key 'layer4.2.conv1.weight'"),
    (_reshape, "key 'layer2.0.downsample.1.weight' gives shapes"),
])
def test_wrong_file_is_refused_before_anything_is_assigned(edit, message, tmp_path):
    path, meta = reference_file(tmp_path, "resnet18", edit=edit)
    model = zoo.create_model("resnet18", num_classes=10, input_shape=(64, 64, 3))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightsError, match=message):
        weights_lib.load_into(model, "resnet18", str(path))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_file_of_another_architecture_is_refused(tmp_path):
    path, _ = reference_file(tmp_path, "resnet18")
    with pytest.raises(WeightsError, match="resnet34: missing key 'layer1.2.conv1.weight'"):
        zoo.create_model("resnet34", weights=path, input_shape=(64, 64, 3))
    with pytest.raises(WeightsError, match="does not have torchvision's layout; "
                                           "models that do: alexnet"):
        zoo.create_model("resnet50", weights=path)


def test_other_classes_and_headless_models_load_the_backbone(tmp_path):
    path, _ = reference_file(tmp_path, "resnet18")
    full = zoo.create_model("resnet18", weights=path, input_shape=(64, 64, 3))
    five = zoo.create_model("resnet18", weights=path, num_classes=5,
                            input_shape=(64, 64, 3))
    headless = zoo.create_model("resnet18", weights=path, include_top=False,
                                pooling="avg", input_shape=(64, 64, 1))
    kernel = full.get_layer("conv5_block2_2_conv").get_weights()[0]
    np.testing.assert_array_equal(five.get_layer("conv5_block2_2_conv").get_weights()[0],
                                  kernel)
    np.testing.assert_array_equal(headless.get_layer("conv5_block2_2_conv").get_weights()[0],
                                  kernel)
    # One channel: the RGB stem kernel summed (zoo.weights.adapt_stem_kernel).
    np.testing.assert_allclose(headless.get_layer("conv1_conv").get_weights()[0][..., 0, :],
                               full.get_layer("conv1_conv").get_weights()[0].sum(axis=2),
                               rtol=1e-6)


def test_pth_without_torch_says_how(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    (tmp_path / "r18.pth").write_bytes(b"\x80\x04not a real checkpoint")
    with pytest.raises(WeightsError, match=r"needs torch \(pip install torch\).*safetensors"):
        zoo.create_model("resnet18", weights=tmp_path / "r18.pth", num_classes=10)


def test_corrupt_safetensors_is_refused(tmp_path):
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(WeightsError, match="Cannot read .*cut.safetensors as safetensors"):
        zoo.create_model("resnet18", weights=tmp_path / "cut.safetensors", num_classes=10)


def test_convert_weights_command(tmp_path):
    from zoo.cli import main
    path, meta = reference_file(tmp_path, "alexnet")
    out = tmp_path / "alexnet.weights.h5"
    assert main(["convert-weights", str(path), "--model", "alexnet",
                 "--out", str(out)]) == 0
    assert weights_lib.file_info(out) == {"model": "alexnet", "preprocessing": "torch",
                                          "source": "alexnet.safetensors",
                                          "num_classes": 10}
    assert weights_lib.preprocessing_of("alexnet", str(out)) == "torch"
    model = zoo.create_model("alexnet", weights=out, num_classes=10,
                             classifier_activation=None)
    logits = np.asarray(model(REFERENCE["reference_input"](224), training=False))
    expected = np.load(DATA / "alexnet_logits.npy")
    assert np.abs(logits - expected).max() / np.abs(expected).max() <= 1e-4
    assert main(["convert-weights", str(path), "--model", "alexnet",
                 "--out", str(tmp_path / "x.h5")]) == 2


# The `.pth` path needs torch (torch.load(weights_only=True): no pickle of
# our own). torch is not a test dependency (5.5 GB of wheels): without it
# these tests are skipped, and pytest's summary line counts them.
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed "
                                 "(pip install torch to run the .pth reading tests)")


@needs_torch
def test_pth_checkpoint_written_by_torch_is_read_as_saved():
    # Made by torch.save (benchmarks/torchvision_reference.py --pth-fixtures):
    # a DataParallel training checkpoint with float16, bfloat16 and int64.
    state = torch_weights.read_state_dict(DATA / "pth_checkpoint.pth")
    expected = np.load(DATA / "pth_checkpoint.npz")
    assert sorted(state) == sorted(expected.files)        # wrapper and prefix gone
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key])
    with pytest.raises(WeightsError, match="holds a list, not a state dict"):
        torch_weights.read_state_dict(DATA / "pth_list.pth")


@needs_torch
def test_pth_file_loads_like_the_safetensors_file(tmp_path):
    import torch
    path, meta = reference_file(tmp_path, "resnet18")
    state = REFERENCE["seeded_state_dict"](meta["keys"])
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "r18.pth")
    size = meta["input_size"]
    logits = [np.asarray(zoo.create_model("resnet18", weights=p, input_shape=(size, size, 3),
                                          classifier_activation=None)(
        REFERENCE["reference_input"](size), training=False))
        for p in (path, tmp_path / "r18.pth")]
    expected = np.load(DATA / "resnet18_logits.npy")
    np.testing.assert_array_equal(logits[1], logits[0])
    assert np.abs(logits[1] - expected).max() <= 1e-4 * np.abs(expected).max()
