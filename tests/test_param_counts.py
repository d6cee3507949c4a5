"""Parameter counts are acceptance criteria (issue #2)."""

import keras
import pytest

import zoo

KERAS_APPLICATIONS = {
    "resnet50": lambda: keras.applications.ResNet50(weights=None),
    "resnet101": lambda: keras.applications.ResNet101(weights=None),
    "resnet152": lambda: keras.applications.ResNet152(weights=None),
    "resnet50_v2": lambda: keras.applications.ResNet50V2(weights=None),
    "resnet101_v2": lambda: keras.applications.ResNet101V2(weights=None),
    "resnet152_v2": lambda: keras.applications.ResNet152V2(weights=None),
    "mobilenet_v1_025": lambda: keras.applications.MobileNet(alpha=0.25, weights=None),
    "mobilenet_v1_050": lambda: keras.applications.MobileNet(alpha=0.5, weights=None),
    "mobilenet_v1_075": lambda: keras.applications.MobileNet(alpha=0.75, weights=None),
    "mobilenet_v1_100": lambda: keras.applications.MobileNet(alpha=1.0, weights=None),
    "mobilenet_v2_050": lambda: keras.applications.MobileNetV2(alpha=0.5, weights=None),
    "mobilenet_v2_100": lambda: keras.applications.MobileNetV2(alpha=1.0, weights=None),
    "mobilenet_v2_140": lambda: keras.applications.MobileNetV2(alpha=1.4, weights=None),
    "xception": lambda: keras.applications.Xception(weights=None),
}

# Trainable parameters at 1000 classes, as torchvision's model builders
# report them (torchvision.models docs, "num_params").
TORCHVISION = {
    "alexnet": 61_100_840,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "tv_resnet50": 25_557_032,
    "tv_resnet101": 44_549_160,
    "tv_resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
}

# Published figures at 10 classes, with the paper's precision (millions):
# He et al. 2016 Table 6 and Xie et al. 2017 Table 7.
PAPERS = {
    "resnet20": "0.27", "resnet32": "0.46", "resnet44": "0.66",
    "resnet56": "0.85", "resnet110": "1.7",
    "resnext29_8x64d": "34.4", "resnext29_16x64d": "68.1",
}


def trainable(model):
    return zoo.count_params(model)["trainable"]


@pytest.mark.parametrize("name", sorted(KERAS_APPLICATIONS))
def test_equals_keras_applications(name):
    reference = KERAS_APPLICATIONS[name]()
    model = zoo.create_model(name)
    assert model.count_params() == reference.count_params()
    assert trainable(model) == trainable(reference)
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_equals_torchvision(name):
    assert trainable(zoo.create_model(name, num_classes=1000)) == TORCHVISION[name]


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_equals_paper_table(name):
    published = PAPERS[name]
    decimals = len(published.split(".")[1])
    count = trainable(zoo.create_model(name, num_classes=10))
    # Within one unit of the last published digit: He et al. round
    # (269,722 -> 0.27M) while Xie et al. truncate (68,155,210 -> 68.1M).
    assert abs(count / 1e6 - float(published)) < 10 ** -decimals


def test_cifar_resnet_exact_counts():
    # Exact counts of the option-A networks (3×3 convs without bias, BN,
    # 64→10 classifier); they round to the paper's figures above.
    assert trainable(zoo.create_model("resnet20")) == 269_722
    assert trainable(zoo.create_model("resnet56")) == 853_018


def test_option_a_shortcuts_have_no_parameters():
    model = zoo.create_model("resnet20")
    shortcuts = [l for l in model.layers if l.name.endswith("_0_shortcut")]
    assert len(shortcuts) == 2
    assert all(l.count_params() == 0 for l in shortcuts)
    assert not any(l.name.endswith("_0_conv") for l in model.layers)


def test_resnet50_macs_match_known_figure():
    # He et al. 2016 Table 1: 3.8 × 10^9 multiply-adds for the Caffe layout
    # (stride on the first 1×1 convolution) that keras.applications uses.
    macs = zoo.model_info("resnet50")["macs"]
    assert abs(macs / 3.8e9 - 1) < 0.03


def test_resnet18_macs_match_torchvision():
    # torchvision reports 1.81 GFLOPS (multiply-accumulates) for resnet18.
    assert round(zoo.model_info("resnet18")["macs"] / 1e9, 2) == 1.81
