"""Finding and checking the file of a weight record (zoo.weight_files):
torch's hub cache, Keras' cache, hashes, and a tag that loads end to end."""

import dataclasses
import hashlib
import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import zoo
from zoo import registry, weight_files
from zoo.errors import WeightsError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "torchvision"
REFERENCE = runpy.run_path(str(ROOT / "benchmarks" / "torchvision_reference.py"))


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch and Keras caches, and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    return hub


def test_a_timm_tag_loads_from_the_hub_cache_with_torchvision_logits(caches, monkeypatch):
    # The A1 checkpoint's name in torch's hub cache, holding the seeded
    # ResNet-50 whose torchvision logits tests/data/torchvision keeps.
    meta = json.loads((DATA / "tv_resnet50.json").read_text())
    save_file(REFERENCE["seeded_state_dict"](meta["keys"]),
              str(caches / "resnet50.a1_in1k.safetensors"))
    size = meta["input_size"]
    model = zoo.create_model("tv_resnet50", weights="tv_resnet50.a1_in1k",
                             num_classes=meta["num_classes"], input_shape=(size, size, 3),
                             classifier_activation=None)
    logits = np.asarray(model(REFERENCE["reference_input"](size), training=False))
    expected = np.load(DATA / "tv_resnet50_logits.npy")
    assert np.all(np.isfinite(logits)) and np.abs(expected).max() > 0.1
    assert np.abs(logits - expected).max() / np.abs(expected).max() <= 1e-4


def test_a_torchvision_file_is_checked_against_the_hash_in_its_name(caches):
    record = registry.get_entry("resnet18").weights["tv_in1k"]
    path = caches / record.file
    path.write_bytes(b"a file that is not torchvision's resnet18")
    with pytest.raises(WeightsError, match=r"Checksum mismatch for resnet18.tv_in1k: .*"
                                           r"resnet18-f37072fd.pth has sha256 .*the "
                                           r"publisher's is f37072fd"):
        weight_files.locate(record)
    # The same bytes under a record whose prefix they have are found.
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    fitting = dataclasses.replace(record, files=(dataclasses.replace(
        record.files[0], hash=f"sha256-prefix:{prefix}"),))
    assert weight_files.locate(fitting) == path


def test_a_missing_file_offline_says_where_it_was_looked_for(caches):
    record = registry.get_entry("vgg11").weights["tv_in1k"]
    with pytest.raises(WeightsError, match=r"Could not find vgg11-8a719046.pth "
                                           r"\(vgg11.tv_in1k\) in .*hub/checkpoints.* nor "
                                           r"download it from https://download.pytorch.org/"
                                           r"models/vgg11-8a719046.pth.*copy the file there"):
        weight_files.locate(record)


def test_hashes_of_every_kind():
    path = ROOT / "tests" / "data" / "FASHION_MNIST_LICENSE"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert weight_files.matches(path, f"sha256:{sha}") == (True, sha)
    assert weight_files.matches(path, f"sha256-prefix:{sha[:8]}")[0]
    assert weight_files.matches(path, f"md5:{md5}") == (True, md5)
    assert not weight_files.matches(path, f"sha256-prefix:{sha[1:9]}")[0]
    assert not weight_files.matches(path, "md5:" + "0" * 32)[0]
    assert weight_files.matches(path, None) == (True, "")


def test_a_missing_checkpoint_is_refused_before_the_run_starts(caches, tmp_path):
    from zoo import training
    out = tmp_path / "run"
    config = training.TrainConfig("vgg11", dataset="digits", image_size=32,
                                  weights="tv_in1k", fine_tune=True, epochs=1)
    with pytest.raises(WeightsError, match=r"Could not find vgg11-8a719046.pth "
                                           r"\(vgg11.tv_in1k\) in .*copy the file there"):
        training.train(config, out)
    assert not out.exists()
