"""Pretrained weights and transfer learning, all offline (issue #3)."""

import logging
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from helpers import subprocess_env
from zoo import registry, weights as weights_lib
from zoo.weights import WeightsError

import tf_keras  # noqa: E402  (installed with the package: missing fails)

KA_CASES = {
    # zoo name: (tf_keras builder, keras.applications builder, input size)
    "resnet50": (lambda **k: tf_keras.applications.ResNet50(**k),
                 lambda **k: keras.applications.ResNet50(**k), 32),
    "resnet50_v2": (lambda **k: tf_keras.applications.ResNet50V2(**k),
                    lambda **k: keras.applications.ResNet50V2(**k), 32),
    "mobilenet_v1_050": (lambda **k: tf_keras.applications.MobileNet(alpha=0.5, **k),
                         lambda **k: keras.applications.MobileNet(alpha=0.5, **k), 32),
    "mobilenet_v2_100": (lambda **k: tf_keras.applications.MobileNetV2(**k),
                         lambda **k: keras.applications.MobileNetV2(**k), 32),
    "xception": (lambda **k: tf_keras.applications.Xception(**k),
                 lambda **k: keras.applications.Xception(**k), 71),
}


def legacy_file(tmp_path, name, include_top):
    """A keras.applications-format (Keras 2 HDF5) weight file, random values."""
    build, _, size = KA_CASES[name]
    model = build(weights=None, include_top=include_top, input_shape=(size, size, 3))
    path = tmp_path / f"{name}_{include_top}.h5"
    model.save_weights(str(path))
    return path, size


@pytest.mark.parametrize("name", sorted(KA_CASES))
@pytest.mark.parametrize("include_top", [True, False])
def test_keras_applications_file_gives_same_outputs(name, include_top, tmp_path, rng):
    path, size = legacy_file(tmp_path, name, include_top)
    _, ka_build, _ = KA_CASES[name]
    reference = ka_build(weights=str(path), include_top=include_top,
                         input_shape=(size, size, 3))
    model = zoo.create_model(name, weights=str(path), include_top=include_top,
                             input_shape=(size, size, 3))
    x = rng.random((2, size, size, 3), dtype=np.float32) * 2 - 1
    np.testing.assert_allclose(model(x, training=False).numpy(),
                               reference(x, training=False).numpy(), atol=1e-5)


def test_imagenet_resolves_through_keras_cache_offline(tmp_path):
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    model = tf_keras.applications.MobileNet(alpha=0.25, weights=None, include_top=False,
                                            input_shape=(128, 128, 3))
    model.save_weights(str(home / "models" / "mobilenet_2_5_128_tf_no_top.h5"))
    code = """
import numpy as np, keras, zoo
x = np.random.default_rng(0).random((1, 128, 128, 3), dtype=np.float32)
a = zoo.create_model("mobilenet_v1_025", weights="imagenet", include_top=False,
                     input_shape=(128, 128, 3))
b = keras.applications.MobileNet(alpha=0.25, weights="imagenet", include_top=False,
                                 input_shape=(128, 128, 3))
print("maxdiff", float(np.abs(a(x) - b(x)).max()))
"""
    env = subprocess_env(KERAS_HOME=str(home), HTTPS_PROXY="http://127.0.0.1:9",
                         HTTP_PROXY="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.split("maxdiff")[-1]) < 1e-5


def test_imagenet_file_names_match_keras_applications():
    assert weights_lib.imagenet_file("resnet101_v2", False)[0] == \
        "resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    fname, origin, md5 = weights_lib.imagenet_file("resnet50", True)
    assert fname == "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    assert origin.endswith("/keras-applications/resnet/" + fname)
    assert md5 == "2cb95161c43110f7111970584f804107"
    assert weights_lib.imagenet_file("mobilenet_v2_140", True, 160)[0] == \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.4_160.h5"
    assert weights_lib.imagenet_file("xception", False)[2] == \
        "b0042744bf5b25fce3cb969f33bebb97"


def test_other_class_count_loads_all_but_classifier(tmp_path, caplog):
    path, size = legacy_file(tmp_path, "resnet50", True)
    reference = zoo.create_model("resnet50", weights=str(path), input_shape=(32, 32, 3))
    with caplog.at_level(logging.WARNING, logger="zoo.weights"):
        model = zoo.create_model("resnet50", weights=str(path), num_classes=5,
                                 input_shape=(32, 32, 3))
    assert "except the classifier (predictions)" in caplog.text
    np.testing.assert_array_equal(model.get_layer("conv5_block3_3_conv").get_weights()[0],
                                  reference.get_layer("conv5_block3_3_conv").get_weights()[0])
    assert model.output_shape == (None, 5)


def test_one_and_n_channel_stem_adaptation(tmp_path, rng):
    source = zoo.create_model("resnet20", input_shape=(32, 32, 3))
    path = tmp_path / "rgb.weights.h5"
    source.save_weights(path)
    grey = zoo.create_model("resnet20", weights=str(path), input_shape=(32, 32, 1))
    x = rng.random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(grey(x, training=False).numpy(),
                               source(np.repeat(x, 3, axis=-1), training=False).numpy(),
                               atol=1e-5)
    six = zoo.create_model("resnet20", weights=str(path), input_shape=(32, 32, 6))
    x6 = np.concatenate([x.repeat(3, -1), x.repeat(3, -1)], axis=-1)
    np.testing.assert_allclose(six(x6, training=False).numpy(),
                               source(x.repeat(3, -1), training=False).numpy(), atol=1e-5)


def test_other_input_size_for_fully_convolutional_backbone(tmp_path, rng):
    path, _ = legacy_file(tmp_path, "mobilenet_v2_100", False)
    model = zoo.create_model("mobilenet_v2_100", weights=str(path), include_top=False,
                             pooling="avg", input_shape=(96, 80, 3))
    assert model(rng.random((1, 96, 80, 3), dtype=np.float32)).shape == (1, 1280)


def test_features_only_with_feature_info(rng):
    model = zoo.create_model("resnet50", features_only=True, input_shape=(64, 64, 3))
    assert [f["stride"] for f in model.feature_info] == [4, 4, 8, 16, 32]
    assert [f["channels"] for f in model.feature_info] == [64, 256, 512, 1024, 2048]
    outs = model(rng.random((1, 64, 64, 3), dtype=np.float32))
    assert [o.shape[-1] for o in outs] == [64, 256, 512, 1024, 2048]
    picked = zoo.create_model("mobilenet_v2_100", features_only=True,
                              out_indices=(2, 4), input_shape=(64, 64, 3))
    assert [f["stride"] for f in picked.feature_info] == [8, 32]
    with pytest.raises(ValueError, match="cannot be combined with include_top=True"):
        zoo.create_model("resnet20", features_only=True, include_top=True)
    with pytest.raises(ValueError, match="out_indices must pick stages 0..3"):
        zoo.create_model("resnet20", features_only=True, out_indices=(7,))


def test_file_of_another_architecture_names_layer_and_shapes(tmp_path):
    path2 = tmp_path / "mobile.weights.h5"
    zoo.create_model("mobilenet_v2_050_cifar").save_weights(path2)
    with pytest.raises(WeightsError, match="the model's layer\\(s\\) 'conv1_conv'.* "
                                           "are not in the file"):
        zoo.create_model("resnet20", weights=str(path2))
    path = tmp_path / "resnet32.weights.h5"
    zoo.create_model("resnet32").save_weights(path)
    model = zoo.create_model("resnet56")
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightsError, match="'conv2_block6_1_conv'"):
        weights_lib.assign(model, weights_lib.read_weights(path), source=str(path))
    # Nothing half-loaded.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_file_of_a_bigger_sibling_is_refused(tmp_path):
    # resnet32's file holds every layer of resnet20 and more: it used to load
    # silently. The extra layers are named; skip_mismatch=True opts in.
    path = tmp_path / "resnet32.weights.h5"
    source = zoo.create_model("resnet32", input_shape=(32, 32, 3))
    source.save_weights(path)
    with pytest.raises(WeightsError, match="the file's layer\\(s\\) "
                                           "'conv\\d_block[45]_.* are not in the model"):
        zoo.create_model("resnet20", weights=str(path), input_shape=(32, 32, 3))
    model = zoo.create_model("resnet20", weights=str(path), input_shape=(32, 32, 3),
                             skip_mismatch=True)
    np.testing.assert_array_equal(model.get_layer("conv2_block1_1_conv").get_weights()[0],
                                  source.get_layer("conv2_block1_1_conv").get_weights()[0])


def test_half_matching_names_are_not_matched_by_order(tmp_path):
    # The old fallback matched by order when half the names matched, which
    # swaps same-shape layers (a ResNet block's shortcut BN and its last BN).
    model = zoo.create_model("resnet18", num_classes=10, input_shape=(32, 32, 3))
    arrays = {layer.name: [np.asarray(w) for w in layer.get_weights()]
              for layer in model.layers if layer.weights}
    renamed = {(f"layer_{i}" if i % 2 else k): v for i, (k, v) in enumerate(arrays.items())}
    with pytest.raises(WeightsError, match="are not in the file"):
        weights_lib.assign(model, renamed, source="renamed file")


def test_shape_mismatch_message(tmp_path):
    zoo.create_model("resnet20", num_classes=10).save_weights(tmp_path / "a.weights.h5")
    arrays = weights_lib.read_weights(tmp_path / "a.weights.h5")
    arrays["conv2_block1_1_conv"] = [np.zeros((5, 5, 16, 16), np.float32)]
    model = zoo.create_model("resnet20")
    with pytest.raises(WeightsError, match=r"layer 'conv2_block1_1_conv' has weight "
                                           r"shapes \[\(3, 3, 16, 16\)\] in the model "
                                           r"but \[\(5, 5, 16, 16\)\] in the file"):
        weights_lib.assign(model, arrays, source="test file")


def test_truncated_and_corrupt_files(tmp_path):
    zoo.create_model("resnet20").save_weights(tmp_path / "w.weights.h5")
    data = (tmp_path / "w.weights.h5").read_bytes()
    (tmp_path / "cut.weights.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        zoo.create_model("resnet20", weights=str(tmp_path / "cut.weights.h5"))
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="not a readable .keras file"):
        zoo.create_model("resnet20", weights=str(tmp_path / "bad.keras"))
    with pytest.raises(WeightsError, match="does not exist"):
        zoo.create_model("resnet20", weights=str(tmp_path / "none.weights.h5"))


def test_keras_file_as_weights(tmp_path, rng):
    source = zoo.create_model("resnet20")
    source.save(tmp_path / "m.keras")
    model = zoo.create_model("resnet20", weights=str(tmp_path / "m.keras"))
    x = rng.random((1, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(model(x, training=False), source(x, training=False), atol=1e-6)


def test_unknown_tag_and_missing_imagenet():
    with pytest.raises(WeightsError, match="Unknown weights 'cifar10' for resnet20; "
                                           "available: .*resnet20.fashion_mnist"):
        zoo.create_model("resnet20", weights="cifar10")
    with pytest.raises(WeightsError, match="resnet20 has no ImageNet weights.*resnet50"):
        zoo.create_model("resnet20", weights="imagenet")
    with pytest.raises(WeightsError, match="belong to resnet32, not resnet20"):
        zoo.create_model("resnet20", weights="resnet32.fashion_mnist")


SHIPPED = ["resnet20.fashion_mnist", "mobilenet_v2_050_cifar.fashion_mnist",
           "alexnet_cifar.fashion_mnist"]


def _spec(full_tag):
    arch, tag = full_tag.split(".")
    return registry.get_entry(arch).weights[tag]


@pytest.mark.parametrize("full_tag", SHIPPED)
def test_shipped_checkpoint_cards(full_tag):
    spec = _spec(full_tag)
    assert spec.path.is_file()
    assert weights_lib.sha256(spec.path) == spec.sha256
    threshold = 0.92 if spec.arch == "resnet20" else 0.90
    assert spec.metrics["test_accuracy"] >= threshold
    assert spec.command.startswith(f"zoo train {spec.arch} --dataset fashion_mnist")
    assert spec.num_classes == 10 and spec.preprocessing == "unit"
    assert full_tag in zoo.model_info(spec.arch)["weights"]


@pytest.mark.parametrize("full_tag", SHIPPED)
def test_shipped_checkpoint_accuracy_on_committed_test_slice(full_tag):
    # 1,000 official Fashion-MNIST test images, 100 per class
    # (benchmarks/fashion_slice.py); the card's figure is on all 10,000.
    from zoo import preprocessing
    spec = _spec(full_tag)
    data = np.load(Path(__file__).parent / "data" / "fashion_mnist_test_1000.npz")
    assert np.bincount(data["y"]).tolist() == [100] * 10
    model = zoo.create_model(spec.arch, weights=full_tag)
    x = preprocessing.scale(data["x"][..., None].astype("float32"), spec.preprocessing)
    probs = model.predict(x, batch_size=250, verbose=0)
    assert np.isfinite(probs).all()
    accuracy = float((probs.argmax(-1) == data["y"]).mean())
    assert abs(accuracy - spec.metrics["test_accuracy"]) <= 0.015, accuracy


def test_shipped_checkpoints_fit_in_10_mb():
    assert sum(_spec(t).path.stat().st_size for t in SHIPPED) <= 10_000_000


def test_checksum_mismatch_is_refused(monkeypatch):
    import dataclasses
    entry = registry.get_entry("resnet20")
    spec = entry.weights["fashion_mnist"]
    damaged = dataclasses.replace(spec.files[0], hash="sha256:" + "0" * 64)
    monkeypatch.setitem(entry.weights, "fashion_mnist",
                        dataclasses.replace(spec, files=(damaged,)))
    with pytest.raises(WeightsError, match="Checksum mismatch for resnet20.fashion_mnist"):
        zoo.create_model("resnet20", weights="fashion_mnist")


@pytest.mark.parametrize("name,reference", [
    ("resnet50", keras.applications.resnet50.preprocess_input),
    ("resnet50_v2", keras.applications.resnet_v2.preprocess_input),
    ("mobilenet_v2_100", keras.applications.mobilenet_v2.preprocess_input),
    ("xception", keras.applications.xception.preprocess_input),
])
def test_preprocess_input_matches_keras_applications(name, reference, rng):
    x = rng.random((2, 8, 8, 3), dtype=np.float32) * 255
    expected = reference(x.copy())
    np.testing.assert_allclose(np.asarray(zoo.preprocess_input(name, x)), expected,
                               rtol=1e-5, atol=1e-4)
    assert zoo.model_info(name)["preprocessing"] in ("caffe", "tf")


def test_imagenet_file_with_wrong_md5_is_reported_as_such(tmp_path):
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    fname, _, _ = weights_lib.imagenet_file("resnet50", include_top=False)
    (home / "models" / fname).write_bytes(b"not the published file")
    code = ("import zoo\n"
            "zoo.create_model('resnet50', weights='imagenet', include_top=False)\n")
    env = subprocess_env(KERAS_HOME=str(home), HTTPS_PROXY="http://127.0.0.1:9",
                         HTTP_PROXY="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    assert "Checksum mismatch" in result.stderr and "4d473c1dd8becc155b73f8504c6f6626" \
        in result.stderr, result.stderr[-2000:]
