"""Transfer learning (zoo.transfer): freezing by stage, the linear probe, LP-FT
fine-tuning from Python and the command line."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from helpers import subprocess_env
from zoo import registry, transfer


def test_transfer_from_shipped_checkpoint(rng):
    spec = registry.get_entry("resnet20").weights["fashion_mnist"]
    full = zoo.create_model("resnet20", weights="fashion_mnist")
    assert full.input_shape[1:] == spec.input_shape
    model = zoo.create_model("resnet20", weights="resnet20.fashion_mnist",
                             num_classes=5, input_shape=(32, 32, 1))
    assert model.output_shape == (None, 5)
    np.testing.assert_array_equal(model.get_layer("conv4_block3_2_conv").get_weights()[0],
                                  full.get_layer("conv4_block3_2_conv").get_weights()[0])


def test_freeze_and_unfreeze_by_stage():
    model = zoo.create_model("resnet20")
    transfer.freeze(model)
    trainable = {l.name for l in model.layers if l.trainable and l.weights}
    assert trainable == {"predictions"}
    transfer.unfreeze(model, 1)
    assert model.get_layer("conv4_block1_1_conv").trainable
    assert not model.get_layer("conv4_block1_1_bn").trainable       # BN stays frozen
    assert not model.get_layer("conv3_block3_2_conv").trainable
    transfer.freeze(model, up_to=1)
    assert not model.get_layer("conv2_block3_2_conv").trainable
    assert model.get_layer("conv3_block1_1_conv").trainable
    with pytest.raises(ValueError, match="up_to must be a stage index 0..3"):
        transfer.freeze(model, up_to=9)


@pytest.fixture(scope="module")
def digits28():
    from zoo import data as data_lib
    return data_lib.load("digits", image_size=28, batch_size=64, limit=256)


def test_linear_probe_writes_a_new_head(digits28):
    model = _checkpoint_model(digits28)
    old = model.get_layer("predictions").get_weights()[0].copy()
    summary = transfer.prepare(model, digits28.train, digits28.val)
    assert summary["head"] == "new" and summary["bn"] == "train"
    probe = summary["probe"]
    assert not np.allclose(model.get_layer("predictions").get_weights()[0], old)
    # The fitted regression (standardisation folded into the Dense layer)
    # scores the same through Keras as in scikit-learn.
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    keras_val = model.evaluate(digits28.val, verbose=0)[1]
    assert abs(keras_val - probe["val_accuracy"]) < 1e-6
    assert probe["val_accuracy"] > 0.5          # frozen clothing features, 10 digits
    # Same channels as the source: its BatchNormalization statistics stay.
    assert summary["bn_recalibrated"] is None
    np.testing.assert_array_equal(
        model.get_layer("conv1_bn").moving_mean,
        _checkpoint_model(digits28).get_layer("conv1_bn").moving_mean)
    kept = _checkpoint_model(digits28)
    summary = transfer.prepare(kept, digits28.train, digits28.val, keep_head=True)
    assert summary["head"] == "kept" and summary["probe"] is None
    np.testing.assert_array_equal(kept.get_layer("predictions").get_weights()[0], old)


def test_an_adapted_stem_gets_the_training_images_statistics(digits28):
    from zoo import data as data_lib
    rgb = data_lib.load("digits", image_size=28, channels=3, batch_size=64, limit=256)
    model = zoo.create_model("resnet20", weights="fashion_mnist", num_classes=10,
                             input_shape=(28, 28, 3))
    assert dict(model.zoo_adapted_stem) == {"layer": "conv1_conv", "from_channels": 1,
                                            "to_channels": 3}
    source = _checkpoint_model(digits28).get_layer("conv1_bn").moving_mean
    momentum = model.get_layer("conv1_bn").momentum
    summary = transfer.prepare(model, rgb.train, rgb.val)
    batches = list(rgb.train)
    assert summary["bn_recalibrated"]["batches"] == len(batches) > 1
    # The stem's BatchNormalization holds the mean of its batch means over
    # the training images (the source's statistics are gone), and the probe
    # was fit on the features computed with them.
    conv = keras.Model(model.inputs, model.get_layer("conv1_conv").output)
    means = np.mean([np.asarray(conv(x)).mean(axis=(0, 1, 2)) for x, _ in batches], 0)
    bn = model.get_layer("conv1_bn")
    np.testing.assert_allclose(bn.moving_mean, means, rtol=1e-4, atol=1e-5)
    # (grey digits on three equal channels: only the domain moved them, by
    # more than the tolerance above)
    assert np.abs(np.asarray(bn.moving_mean) - np.asarray(source)).max() > 0.01
    assert bn.momentum == momentum < 1 and bn.trainable
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert abs(model.evaluate(rgb.val, verbose=0)[1]
               - summary["probe"]["val_accuracy"]) < 1e-6
    assert f"re-estimated on {len(batches)} training batches" in transfer.describe(
        summary, steps=1, epochs=1, learning_rate=1e-3, backbone_lr_factor=1.0)


def test_recalibrate_bn_averages_batch_statistics_and_restores_the_layers():
    from zoo import probe
    x = np.random.default_rng(0).normal(3.0, 2.0, (48, 4)).astype("float32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9)(inputs))
    bn = model.layers[-1]
    bn.trainable = False
    data = [(x[i:i + 16], None) for i in (0, 16, 32)]
    assert probe.recalibrate_bn(model, data) == 3
    np.testing.assert_allclose(bn.moving_mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance,
                               np.mean([b.var(0) for b, _ in data], 0), rtol=1e-4)
    assert bn.momentum == 0.9 and not bn.trainable
    with pytest.raises(ValueError, match="at least one batch"):
        probe.recalibrate_bn(model, [])


def test_backbone_learning_rate_is_scaled():
    x = np.random.default_rng(0).random((8, 16, 16, 1), np.float32)
    y = np.arange(8) % 10

    def deltas(factor):
        keras.utils.set_random_seed(0)
        model = zoo.create_model("resnet20", input_shape=(16, 16, 1))
        before = {w.path: np.asarray(w).copy() for w in model.trainable_weights}
        optimizer = transfer.scale_backbone_lr(keras.optimizers.SGD(0.1), model, factor)
        model.compile(optimizer, "sparse_categorical_crossentropy")
        model.train_on_batch(x, y)
        return {w.path: np.asarray(w) - before[w.path] for w in model.trainable_weights}

    full, scaled = deltas(1.0), deltas(0.25)
    head = {w.path for w in transfer.classifier_layer(
        zoo.create_model("resnet20", input_shape=(16, 16, 1))).weights}
    for path, delta in full.items():
        expected = delta if path in head else 0.25 * delta
        np.testing.assert_allclose(scaled[path], expected, rtol=1e-4, atol=1e-7)
    assert any(np.abs(d).max() > 0 for p, d in full.items() if p not in head)


def test_python_fine_tune_takes_the_recipes_schedule(monkeypatch):
    # zoo.transfer.fine_tune's phase 2 decays by the recipe's schedule, not
    # by one of its own: with the recipe swapped, the optimizer follows.
    import dataclasses

    import tensorflow as tf

    from zoo.optim import WarmupLinearDecay
    from zoo.recipe import RECIPE
    model = zoo.create_model("resnet20", input_shape=(16, 16, 1))
    data = tf.data.Dataset.from_tensor_slices(
        (np.zeros((4, 16, 16, 1), np.float32), np.zeros(4, np.int64))).batch(2)

    def rate_at(step, schedule):
        monkeypatch.setattr(transfer, "RECIPE", dataclasses.replace(RECIPE, schedule=schedule))
        transfer._compile(model, "adam", 1e-3, 100, 0.0, 1.0, data)
        rate = model.optimizer._learning_rate
        return float(rate(step)) if callable(rate) else float(rate)

    assert RECIPE.schedule == "warmup_linear"
    # 100 steps, 10 of warm-up: at step 70 a straight line is at 30/90 of
    # the peak, the half cosine at (1 + cos(pi * 60/90)) / 2 = 1/4.
    assert rate_at(70, "warmup_linear") == pytest.approx(1e-3 * 30 / 90)
    assert isinstance(model.optimizer._learning_rate, WarmupLinearDecay)
    assert rate_at(70, "constant") == pytest.approx(1e-3)
    cosine = rate_at(70, "warmup_cosine")
    assert not np.isnan(cosine) and cosine == pytest.approx(1e-3 / 4)


def test_fine_tune_never_ends_below_the_probe(digits28):
    model = _checkpoint_model(digits28)
    # A learning rate that wrecks the network: phase 2 cannot beat phase 1,
    # so the probed model is what comes back.
    result = zoo.fine_tune(model, digits28.train, digits28.val, steps=8,
                           learning_rate=50.0, optimizer="sgd", selection="best")
    assert result["kept"] == "probe"
    assert int(model.optimizer.iterations) == 8
    probe = result["summary"]["probe"]["val_accuracy"]
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert abs(model.evaluate(digits28.val, verbose=0)[1] - probe) < 1e-6
    # The recipe's rule on this small split keeps the last epoch: the
    # wrecked model comes back (not the probe), as zoo train would keep it.
    model = _checkpoint_model(digits28)
    result = zoo.fine_tune(model, digits28.train, digits28.val, steps=8,
                           learning_rate=50.0, optimizer="sgd")
    assert result["selection"] == "last" and result["kept"] == "fine_tune"
    probe = result["summary"]["probe"]["val_accuracy"]
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    last = model.evaluate(digits28.val, verbose=0)[1]
    assert abs(last - result["history"]["val_accuracy"][-1]) < 1e-6
    assert last < probe - 0.2, (last, probe)


def test_fine_tune_improves_on_a_small_dataset(digits28):
    model = _checkpoint_model(digits28)
    result = zoo.fine_tune(model, digits28.train, digits28.val, steps=64,
                           unfreeze_stages=1)
    # A small validation split: the recipe's rule keeps the last epoch (as
    # zoo train does), at the recipe's rate. Phase 2 must beat the probe
    # clearly (measured 0.79 -> 0.94), and the model returned must be the
    # last epoch's.
    probe = result["summary"]["probe"]["val_accuracy"]
    assert result["selection"] == "last" and result["kept"] == "fine_tune"
    last = result["history"]["val_accuracy"][-1]
    assert last >= probe + 0.05, (probe, result)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert abs(model.evaluate(digits28.val, verbose=0)[1] - last) < 1e-6
    assert np.isfinite(result["history"]["loss"]).all()
    # The stem is in no unfrozen stage: it never moved.
    np.testing.assert_array_equal(
        model.get_layer("conv1_conv").get_weights()[0],
        _checkpoint_model(digits28).get_layer("conv1_conv").get_weights()[0])


@pytest.mark.slow
def test_cli_fine_tune_says_what_it_does_and_resumes(tmp_path):
    import signal
    import time
    out = tmp_path / "ft"
    args = [sys.executable, "-m", "zoo.cli", "train", "resnet20", "--dataset", "digits",
            "--image-size", "16", "--weights", "fashion_mnist", "--fine-tune",
            "--epochs", "4", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=subprocess_env())
    deadline = time.time() + 300
    while not _logged(out / "log.csv", 1) and time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    result = subprocess.run(args, capture_output=True, text=True, timeout=600,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fine-tune: head new; phase 1 linear probe" in result.stdout
    assert "head lr 0.003, backbone lr 0.003, BatchNormalization train" in result.stdout
    # Phase 2 trains with the recipe's augmentation, and says so.
    assert "peak lr 0.003, augmentation light_erasing)" in result.stdout
    assert "Epoch 1/" not in result.stdout                 # resumed after epoch 1
    metrics = json.loads((out / "metrics.json").read_text())
    # All 1,437 labelled images at batch 32: 10 % would be 144 validation
    # images, too few to choose an epoch by, so the recipe holds none out.
    assert "images: 1,437 training, 0 validation (the recipe holds none out" \
        in result.stdout
    assert metrics["optimizer_steps"] == 4 * 45
    probe = json.loads((out / "probe.json").read_text())
    assert probe["head"] == "new" and probe["probe"]["train_accuracy"] > 0.5
    assert probe["probe"]["val_accuracy"] is None
    assert (out / "curves.png").is_file()


def _checkpoint_model(data):
    return zoo.create_model("resnet20", weights="fashion_mnist", num_classes=10,
                            input_shape=data.info.image_shape)


def _logged(path, n):
    try:
        return sum(1 for line in open(path)) - 1 >= n
    except OSError:
        return False
