"""The VGG family (issue #16): added as one file, zoo/models/vgg.py."""

import numpy as np
import pytest

import zoo
from zoo.errors import InputError

# Trainable parameters at 10 classes of the CIFAR-10 VGGs of
# kuangliu/pytorch-cifar (models/vgg.py: 3×3 conv with bias + BN + ReLU,
# five max poolings, Linear(512, 10)), as torch counts them.
PYTORCH_CIFAR = {"vgg11_cifar": 9_231_114, "vgg13_cifar": 9_416_010,
                 "vgg16_cifar": 14_728_266, "vgg19_cifar": 20_040_522}


@pytest.mark.parametrize("name", sorted(PYTORCH_CIFAR))
def test_parameter_counts_equal_the_reference(name):
    model = zoo.create_model(name)
    assert zoo.count_params(model)["trainable"] == PYTORCH_CIFAR[name]
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)


def test_the_family_is_registered_from_its_module():
    assert "vgg" in zoo.FAMILIES
    # The CIFAR forms (zoo/models/vgg.py) and torchvision's VGG-11
    # (zoo/models/vgg_imagenet.py).
    assert zoo.list_models(family="vgg") == sorted([*PYTORCH_CIFAR, "vgg11"])
    entry = zoo.registry.get_entry("vgg16_cifar")
    assert entry.min_size == 32 and not entry.drop_path and "imagenet" not in entry.weights
    with pytest.raises(InputError, match="drop_path_rate applies to residual families"):
        zoo.create_model("vgg11_cifar", drop_path_rate=0.1)
    with pytest.raises(InputError, match="no ImageNet weights"):
        zoo.create_model("vgg11_cifar", weights="imagenet")


def test_features_and_compression_bridge(rng):
    features = zoo.create_model("vgg11_cifar", features_only=True, input_shape=(32, 32, 3))
    assert [tuple(o.shape[1:]) for o in features.outputs] == [
        (16, 16, 64), (8, 8, 128), (4, 4, 256), (2, 2, 512), (1, 1, 512)]
    from compression import bridge
    model = zoo.create_model("vgg11_cifar", num_classes=4, input_shape=(32, 32, 1))
    x = rng.random((2, 32, 32, 1), dtype=np.float32)
    twin = bridge.to_tf_keras(model)
    np.testing.assert_allclose(twin(x, training=False).numpy(),
                               model(x, training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_torchvision_vgg11_is_one_file_with_its_weights():
    # zoo/models/vgg_imagenet.py: torchvision's VGG-11 (its published
    # num_params, 132,863,336), its torch module names and its checkpoint's
    # record; the logits are checked against torchvision in
    # tests/test_torch_weights.py.
    import zoo.models.vgg_imagenet as family
    model = zoo.create_model("vgg11")
    assert zoo.count_params(model)["trainable"] == 132_863_336
    assert [e["name"] for e in family.ENTRIES] == ["vgg11"]
    assert [r.full_tag for r in family.WEIGHTS] == ["vgg11.tv_in1k"]
    entry = zoo.registry.get_entry("vgg11")
    assert entry.weights["tv_in1k"] is family.WEIGHTS[0]
    assert [entry.torch_module(entry.spec, n) for n in
            ("block1_conv1", "block2_conv1", "block5_conv2", "fc1", "predictions")] == \
        ["features.0", "features.3", "features.18", "classifier.0", "classifier.6"]
