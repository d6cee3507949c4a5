"""One record per pretrained weight (issue #29): every source, read by the
registry, the loaders, `zoo info` and `preprocessing_of`."""

import dataclasses
import json

import numpy as np
import pytest

import zoo
from zoo import heads, registry, torch_weights, weight_records, weights as weights_lib
from zoo.errors import WeightsError
from helpers import small_input


def _by_source_and_family():
    """One record per (source, family): enough to check every declaration
    style without building all 30 models."""
    chosen = {}
    for record in registry.weight_records():
        key = (record.source, registry.get_entry(record.arch).family)
        chosen.setdefault(key, record)
    return sorted(chosen.values(), key=lambda r: r.full_tag)


def test_every_source_has_records_and_every_record_a_model():
    records = registry.weight_records()
    assert {r.source for r in records} == {"keras.applications", "torchvision", "timm",
                                          "shipped"}
    for record in records:
        entry = registry.get_entry(record.arch)
        assert entry.weights[record.tag] is record
        assert record.full_tag in registry.weight_tags(record.arch)
        assert record.preprocessing in ("caffe", "tf", "torch", "unit")
        assert record.files and all(f.url or record.source == "shipped"
                                    for f in record.files)
    # Published checkpoints: torchvision's V1 and V2 of ResNet-50, timm's A1.
    assert {"tv_resnet50.tv_in1k", "tv_resnet50.tv2_in1k", "tv_resnet50.a1_in1k",
            "vgg11.tv_in1k", "resnet50.imagenet"} <= {r.full_tag for r in records}
    assert registry.get_entry("tv_resnet50").weights["tv2_in1k"].metrics == {"top1": 0.80858}


def test_list_models_pretrained_is_every_model_with_a_record():
    with_records = {r.arch for r in registry.weight_records()}
    assert set(zoo.list_models(pretrained=True)) == with_records
    assert "vgg11_cifar" not in with_records and "vgg11" in with_records


@pytest.mark.parametrize("record", _by_source_and_family(), ids=lambda r: r.full_tag)
def test_first_conv_and_classifier_name_the_files_layers(record):
    # Keras files name Keras layers; torch files name torch modules, which
    # the family's torch_module gives for the model's layers.
    entry = registry.get_entry(record.arch)
    shape = small_input(record.arch)
    if record.source == "shipped":
        shape = record.input_shape
    model = zoo.create_model(record.arch, num_classes=3, input_shape=shape)
    first_conv = next(layer.name for layer in model.layers
                      if "Conv" in type(layer).__name__)
    classifier = heads.classifier_name(model)
    if record.source in ("torchvision", "timm"):
        first_conv = entry.torch_module(entry.spec, first_conv)
        classifier = entry.torch_module(entry.spec, classifier)
        assert torch_weights.supports(record.arch)
    if record.source == "shipped":
        return       # cards of checkpoints trained here name no layers
    assert (record.first_conv, record.classifier) == (first_conv, classifier)


def test_torchvision_records_carry_the_hash_prefix_of_their_file_name():
    for record in registry.weight_records("torchvision"):
        (file,) = record.files
        assert file.url.endswith("/" + file.name)
        assert file.hash == "sha256-prefix:" + file.name.rsplit("-", 1)[1][:-len(".pth")]
        assert record.num_classes == 1000 and 0.5 < record.metrics["top1"] < 0.9


def test_file_for_picks_the_variant_keras_applications_would():
    record = registry.get_entry("mobilenet_v2_140").weights["imagenet"]
    assert record.file_for(False, 160).name.endswith("_1.4_160_no_top.h5")
    assert record.file_for(True, 100).name.endswith("_1.4_224.h5")   # other size: 224
    resnet = registry.get_entry("resnet50").weights["imagenet"]
    assert resnet.file_for(False).hash == "md5:4d473c1dd8becc155b73f8504c6f6626"


def test_records_round_trip_through_json():
    for record in registry.weight_records():
        again = weight_records.WeightRecord.from_dict(json.loads(record.to_json()))
        assert again == record and again is not record


def test_a_record_with_an_unknown_source_is_refused():
    record = registry.get_entry("resnet18").weights["tv_in1k"]
    with pytest.raises(ValueError, match="source 'github' is not one of"):
        dataclasses.replace(record, source="github")


def test_preprocessing_comes_from_the_record():
    assert weights_lib.preprocessing_of("resnet50", "imagenet") == "caffe"
    assert weights_lib.preprocessing_of("resnet50_v2", "imagenet") == "tf"
    assert weights_lib.preprocessing_of("tv_resnet50", "tv2_in1k") == "torch"
    assert weights_lib.preprocessing_of("resnet20", "fashion_mnist") == "unit"


def test_unknown_tags_list_the_records():
    with pytest.raises(WeightsError, match=r"Unknown weights 'tv3_in1k' for tv_resnet50; "
                                           r"available: tv_resnet50.a1_in1k, "
                                           r"tv_resnet50.tv2_in1k, tv_resnet50.tv_in1k"):
        zoo.create_model("tv_resnet50", weights="tv3_in1k")
    with pytest.raises(WeightsError, match="alexnet has no ImageNet weights .*Its other "
                                           "weights: alexnet.tv_in1k"):
        zoo.create_model("alexnet", weights="imagenet")


def test_converted_file_carries_its_record(tmp_path):
    from safetensors.numpy import save_file
    model = zoo.create_model("resnet18", num_classes=4, input_shape=(32, 32, 3))
    names = torch_weights.module_names(model, "resnet18")
    state = {}
    for layer in model.layers:
        if layer.name not in names:
            continue
        module, values = names[layer.name], [np.asarray(w) for w in layer.get_weights()]
        if type(layer).__name__ == "BatchNormalization":
            for suffix, v in zip(("weight", "bias", "running_mean", "running_var"), values):
                state[f"{module}.{suffix}"] = v
        elif type(layer).__name__ == "Dense":
            state[f"{module}.weight"], state[f"{module}.bias"] = values[0].T, values[1]
        else:
            state[f"{module}.weight"] = values[0].transpose(3, 2, 0, 1)
    save_file(state, str(tmp_path / "r18.safetensors"))
    from zoo.convert import convert
    out = tmp_path / "r18.weights.h5"
    convert(tmp_path / "r18.safetensors", "resnet18", out, input_shape=(32, 32, 3))
    record = weight_records.read_converted(out)
    assert (record.source, record.arch, record.num_classes, record.preprocessing) == \
        ("converted", "resnet18", 4, "torch")
    assert (record.first_conv, record.classifier) == ("conv1_conv", "predictions")
    assert record.files[0].name == "r18.safetensors"
    assert weights_lib.preprocessing_of("resnet18", out) == "torch"
    import h5py
    with h5py.File(out, "a") as f:
        f.attrs[weight_records.RECORD_ATTRIBUTE] = "{not json"
    with pytest.raises(WeightsError, match="weight record .* is damaged"):
        weights_lib.preprocessing_of("resnet18", out)


def test_zoo_info_prints_every_record(capsys):
    from zoo.cli import main
    assert main(["info", "tv_resnet50"]) == 0
    out = capsys.readouterr().out
    assert "tv_resnet50.tv2_in1k (torchvision)" in out and "top1 0.80858" in out
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in out
    assert "tv_resnet50.a1_in1k (timm)" in out and "licence: BSD-3-Clause" in out
