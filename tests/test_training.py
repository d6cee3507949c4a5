"""Optimizers, schedules, training runs and their failure modes (issue #4)."""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from helpers import shallow_resnet, subprocess_env
from zoo import training
from zoo.recipe import RECIPE
from zoo.training import TrainConfig


@pytest.mark.parametrize("name", training.OPTIMIZERS)
def test_each_optimizer_takes_steps(name, rng, monkeypatch):
    model = zoo.create_model(shallow_resnet(monkeypatch), num_classes=3,
                             input_shape=(8, 8, 1))
    opt = training.make_optimizer(name, 0.01, weight_decay=1e-4)
    model.compile(opt, "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x = rng.random((8, 8, 8, 1), dtype=np.float32)
    model.fit(x, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    assert int(opt.iterations.numpy()) == 2
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_optimizer_knobs():
    nesterov = training.make_optimizer("nesterov", 0.1, momentum=0.8)
    assert nesterov.nesterov and nesterov.momentum == pytest.approx(0.8)
    assert training.make_optimizer("sgd", 0.1).momentum == 0
    adamw = training.make_optimizer("adamw", 1e-3, weight_decay=0.05)
    assert adamw.weight_decay == pytest.approx(0.05)
    rms = training.make_optimizer("rmsprop", 1e-3, rho=0.8)
    assert rms.rho == pytest.approx(0.8)


@pytest.mark.parametrize("name", training.SCHEDULES)
def test_each_schedule(name):
    schedule = training.make_schedule(name, 0.1, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) if callable(schedule) else schedule
              for step in (0, 10, 50, 99)]
    assert max(values) == pytest.approx(0.1, rel=1e-4)
    if name == "constant":
        assert values == [0.1] * 4
    elif name == "step":
        assert values[0] == pytest.approx(0.1) and values[3] == pytest.approx(0.001)
    elif name == "cosine":
        assert values[0] > values[2] > values[3]
    else:
        assert values[0] == pytest.approx(0.0) and values[1] == pytest.approx(0.1)


def test_warmup_linear_decays_along_a_straight_line(tmp_path):
    schedule = training.make_schedule("warmup_linear", 0.1, total_steps=100, warmup_steps=10)
    # Up from 0 to the peak over the warm-up, then down by 0.1/90 a step.
    expected = {0: 0.0, 5: 0.05, 10: 0.1, 55: 0.05, 91: 0.01, 100: 0.0, 120: 0.0}
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, abs=1e-6), step
    # Above the half cosine in the middle of the decay (0.0778 against 0.0883
    # at step 30): a cosine under the new name would fail here.
    cosine = training.make_schedule("warmup_cosine", 0.1, total_steps=100, warmup_steps=10)
    assert float(schedule(30)) == pytest.approx(0.1 * 70 / 90, abs=1e-6)
    assert float(cosine(30)) > float(schedule(30)) + 0.01
    # Its warm-up is honoured like warmup_cosine's, and a saved model loads
    # with it in safe mode.
    TrainConfig("resnet20", schedule="warmup_linear", epochs=3, warmup_epochs=2).validate()
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    model.compile(keras.optimizers.Adam(schedule), "mse")
    model.fit(np.zeros((2, 4)), np.zeros((2, 2)), verbose=0)   # builds the optimizer
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    rate = loaded.optimizer._learning_rate           # the schedule, not its value
    assert isinstance(rate, zoo.optim.WarmupLinearDecay)
    assert float(rate(55)) == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("changes,message", [
    ({"optimizer": "adamm"}, "Unknown optimizer 'adamm'. Did you mean: adam"),
    ({"lr": 0.0}, "Learning rate must be > 0"),
    ({"lr": -1.0}, "Learning rate must be > 0"),
    ({"schedule": "exp"}, "Unknown schedule"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"dataset": "cifar11"}, "Unknown dataset"),
    ({"model": "resnet21"}, "Unknown model 'resnet21'"),
    ({"regularizer": "l5"}, "Unknown regularizer"),
    ({"precision": "fp8"}, "Unknown precision"),
    ({"strategy": "multi_worker"}, "keras#20585"),
    ({"fine_tune": True}, "fine_tune needs pretrained weights"),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\)"),
    # Knobs that would have no effect are refused (issue #28).
    ({"momentum": 0.5}, "momentum has no effect with the adam optimizer"),
    ({"optimizer": "sgd", "momentum": 0.5}, "momentum has no effect with the sgd"),
    ({"optimizer": "momentum", "beta_1": 0.8}, "beta_1 has no effect with the momentum"),
    ({"epsilon": 0}, "epsilon must be a number > 0"),
    ({"schedule": "cosine", "warmup_epochs": 2}, "warmup_epochs has no effect with the "
                                                 "cosine schedule"),
    ({"epochs": 3, "warmup_epochs": 3}, r"warmup_epochs \(3\) must be fewer"),
    ({"selection": "median"}, "selection must be one of best, last"),
    ({"selection": "best", "validation_split": 0.0}, "selection 'best' has no effect "
                                                     "without a validation split"),
])
def test_config_validation(changes, message):
    config = TrainConfig(**{"model": "resnet20", **changes})
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_train_writes_all_outputs(tmp_path, monkeypatch):
    config = TrainConfig(shallow_resnet(monkeypatch), dataset="digits", epochs=2,
                         batch_size=64, limit=256, image_size=8, augment="light",
                         regularizer="l2", label_smoothing=0.1, schedule="warmup_cosine",
                         optimizer="nesterov", lr=0.05, weight_decay=1e-4)
    metrics = training.train(config, tmp_path, verbose=0)
    for name in ("model.keras", "history.csv", "metrics.json", "curves.png",
                 "config.json"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved) >= {"test_accuracy", "test_loss", "params", "epochs",
                          "wall_time_s", "config"}
    assert saved["epochs"] == 2 and saved["config"]["optimizer"] == "nesterov"
    assert metrics["test_accuracy"] == saved["test_accuracy"]
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch") and [l.split(",")[0] for l in lines[1:]] == ["1", "2"]
    repeat = TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert repeat == config
    assert not (tmp_path / "backup").exists()
    model = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 10)


def test_a_config_written_under_another_step_floor_repeats_its_run():
    # config.json records min_steps. With explicit epochs it had no effect,
    # so a file written when the recipe's floor was another number loads,
    # validates and resumes as the same run; without epochs the floor is
    # part of the run and is kept (and a different one is a change).
    other = RECIPE.min_steps + 500
    saved = json.loads(json.dumps(TrainConfig("resnet20", dataset="digits",
                                              epochs=3).to_dict()))
    saved["min_steps"] = other
    config = TrainConfig.from_dict(saved)
    config.validate()
    assert config.epochs == 3 and config.changed_from(saved) == []
    floor = json.loads(json.dumps(TrainConfig("resnet20", dataset="digits").to_dict()))
    floor["min_steps"] = other
    assert TrainConfig.from_dict(floor).min_steps == other
    assert TrainConfig("resnet20", dataset="digits").changed_from(floor) == ["min_steps"]


@pytest.mark.parametrize("stored, another", [((28, 28, 1), False), ((8, 8, 1), True),
                                             (None, True)])
def test_a_finished_run_from_before_the_floor_is_reused_where_it_changes_nothing(
        tmp_path, stored, another):
    # reuse_finished (a search's final run, the benchmark's folders): a run
    # from before the image-size floor trained at its stored size, which the
    # floor leaves alone from 16 pixels on (metrics.json records that size);
    # an unfinished run (no metrics.json) cannot tell, and is another run.
    old = json.loads(json.dumps(TrainConfig("resnet20", dataset="digits").to_dict()))
    del old["min_image_size"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    if stored is not None:
        (tmp_path / "metrics.json").write_text(json.dumps(
            {"dataset": {"source_shape": list(stored)}}))
    config = TrainConfig("resnet20", dataset="digits")
    assert training._holds_another_run(tmp_path, config) is another


def test_a_config_written_before_the_image_size_floor_repeats_its_run():
    # Files written before the recipe had min_image_size hold no such key:
    # those runs took the images as stored, and so does their config now.
    # With an explicit image size the floor has no effect on either side.
    old = json.loads(json.dumps(TrainConfig("resnet20", dataset="digits").to_dict()))
    del old["min_image_size"]
    config = TrainConfig.from_dict(old)
    config.validate()
    assert config.min_image_size == 1
    assert training._load_data(config, None).info.image_shape == (8, 8, 1)
    assert TrainConfig("resnet20", dataset="digits").changed_from(old) == ["min_image_size"]
    assert TrainConfig("resnet20", dataset="digits", min_image_size=1).changed_from(old) == []
    # Images stored at 28×28 are at the floor's size either way: no change.
    assert TrainConfig("resnet20", dataset="digits").changed_from(old, (28, 28)) == []
    assert TrainConfig("resnet20", dataset="digits").changed_from(old, (8, 8)) == [
        "min_image_size"]
    sized = json.loads(json.dumps(TrainConfig("resnet20", dataset="digits",
                                              image_size=12).to_dict()))
    del sized["min_image_size"]
    again = TrainConfig.from_dict(sized)
    again.validate()
    assert again.changed_from(sized) == []
    with pytest.raises(ValueError, match="min_image_size=8 is the floor .* no effect"):
        TrainConfig("resnet20", image_size=12, min_image_size=8).validate()


def test_run_without_validation_split_writes_its_outputs(tmp_path, monkeypatch):
    # Keras' CSVLogger writes "NA" for the validation metrics of such a run;
    # the curves used to fail on them (ValueError), after the training.
    config = TrainConfig(shallow_resnet(monkeypatch), dataset="digits", epochs=2, limit=128,
                         image_size=8, validation_split=0.0)
    metrics = training.train(config, tmp_path, verbose=0)
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "model.keras").is_file()
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    assert "accuracy" in header and "val_accuracy" not in header
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_width_multiplier_reaches_the_model(tmp_path):
    config = TrainConfig("mobilenet_v2_050_cifar", dataset="digits", epochs=1, limit=64,
                         image_size=16, width_multiplier=0.75)
    training.train(config, tmp_path, verbose=0)
    model = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert model.get_layer("Conv1").filters == 24


def test_finished_run_is_not_overwritten(tmp_path, monkeypatch):
    config = TrainConfig(shallow_resnet(monkeypatch), dataset="digits", epochs=1, limit=64)
    training.train(config, tmp_path, verbose=0)
    before = (tmp_path / "model.keras").read_bytes()
    with pytest.raises(ValueError, match="already holds a finished run"):
        training.train(config, tmp_path, verbose=0)
    assert (tmp_path / "model.keras").read_bytes() == before


def test_reuse_finished_reuses_only_the_same_configuration(tmp_path, monkeypatch):
    # A search's final run (tuning.final) reuses its folder: a finished run
    # of the same configuration is handed back untouched, one of another
    # configuration is replaced by a run of this one, not handed back.
    config = TrainConfig(shallow_resnet(monkeypatch), dataset="digits", epochs=1, limit=64)
    first = training.train(config, tmp_path, verbose=0, reuse_finished=True)
    before = (tmp_path / "model.keras").read_bytes()
    reused = training.train(config, tmp_path, verbose=0, reuse_finished=True)
    assert reused["wall_time_s"] == first["wall_time_s"]      # not trained again
    assert (tmp_path / "model.keras").read_bytes() == before
    other = dataclasses.replace(config, epochs=2)
    again = training.train(other, tmp_path, verbose=0, reuse_finished=True)
    assert again["epochs"] == 2 and first["epochs"] == 1
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 2
    assert (tmp_path / "model.keras").read_bytes() != before


def test_unfinished_run_with_other_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        TrainConfig("resnet20", dataset="digits", epochs=5).to_dict()))
    with pytest.raises(ValueError, match=r"different configuration \(epochs\)"):
        training.train(TrainConfig("resnet20", dataset="digits", epochs=3),
                       tmp_path, verbose=0)


def test_damaged_state_files_are_refused_not_reset(tmp_path):
    # A damaged config.json used to skip the configuration check (the run
    # resumed); a damaged best.json reset the best score to -inf.
    (tmp_path / "config.json").write_text('{"model": "resnet20", "epo')
    with pytest.raises(ValueError, match=r"config.json is damaged.*--overwrite"):
        training.train(TrainConfig("resnet20", dataset="digits", epochs=3),
                       tmp_path, verbose=0)
    (tmp_path / "best.keras").write_bytes(b"a model")
    (tmp_path / "best.json").write_text('{"value": ')
    with pytest.raises(ValueError, match=r"best.json is damaged.*worse epoch"):
        training.AtomicBestCheckpoint(tmp_path / "best.keras")
    (tmp_path / "best.json").write_text('{"value": 0.75}')
    assert training.AtomicBestCheckpoint(tmp_path / "best.keras").best == 0.75


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="is a file|not writable"):
        training.train(TrainConfig("resnet20", epochs=1), blocker, verbose=0)
    with pytest.raises(ValueError, match="not writable"):
        training.train(TrainConfig("resnet20", epochs=1), blocker / "sub", verbose=0)


def test_images_smaller_than_model_minimum(tmp_path):
    # Without the recipe's floor (min_image_size 8) digits stay 8×8.
    config = TrainConfig("alexnet_cifar", dataset="digits", epochs=1, min_image_size=8)
    with pytest.raises(ValueError, match=r"8×8, smaller than alexnet_cifar's minimum "
                                         r"15×15; pass --image-size 32"):
        training.train(config, tmp_path, verbose=0)


def test_num_classes_smaller_than_labels(tmp_path):
    config = TrainConfig("resnet20", dataset="digits", epochs=1, num_classes=5)
    with pytest.raises(ValueError, match="num_classes=5 but digits has labels 0..9"):
        training.train(config, tmp_path, verbose=0)


def test_nan_loss_stops_with_epoch_and_advice(tmp_path, monkeypatch):
    config = TrainConfig(shallow_resnet(monkeypatch), dataset="digits", epochs=3, limit=128,
                         optimizer="sgd", lr=1e30, schedule="constant")
    with pytest.raises(training.TrainingError, match=r"NaN in epoch 1.*lower learning rate"):
        training.train(config, tmp_path, verbose=0)
    assert not (tmp_path / "model.keras").exists()


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from zoo import training
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from helpers import shallow_resnet
strategy = training._strategy("mirrored")
print("replicas", strategy.num_replicas_in_sync)
m = training.train(training.TrainConfig(shallow_resnet(), dataset="digits", epochs=1,
                   limit=128, strategy="mirrored"), {str(tmp_path)!r}, verbose=0)
print("accuracy", m["test_accuracy"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=600, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
    assert (tmp_path / "model.keras").is_file()


@pytest.mark.parametrize("bf16,name,expected", [
    (True, "resnet50", "mixed_bfloat16"), (True, "xception", "mixed_bfloat16"),
    (True, "mobilenet_v2_100", "float32"), (False, "resnet50", "float32")])
def test_fast_path_follows_measurements(bf16, name, expected, monkeypatch):
    from zoo import devices
    monkeypatch.setattr(devices, "_cpu_has_bf16", lambda: bf16)
    assert training.fast_path(name) == (expected, False)
    with pytest.raises(ValueError, match="Unknown model 'resnet5'"):
        training.fast_path("resnet5")


def test_budget_counts_optimizer_steps():
    # 450 images at batch 64: 8 steps a pass, packed to 7 passes (56 steps)
    # an epoch, and 18 epochs for a floor of 1,000 steps.
    assert training.budget(450, 64, min_steps=1000) == (18, 56)
    assert training.budget(54000, 64, min_steps=1000) == (10, 844)   # floor met
    assert training.budget(450, 64, epochs=3, min_steps=1000) == (3, 8)   # honoured


@pytest.mark.slow
def test_default_run_on_a_small_dataset_gets_the_step_floor(tmp_path, monkeypatch):
    # Smaller constants keep the test fast; the rule is the same.
    from zoo import budget
    monkeypatch.setattr(budget, "DEFAULT_EPOCHS", 2)
    monkeypatch.setattr(budget, "MIN_EPOCH_STEPS", 10)
    model = shallow_resnet(monkeypatch)
    config = TrainConfig(model, dataset="digits", limit=128, image_size=8,
                         min_steps=30, batch_size=64)
    metrics = training.train(config, tmp_path, verbose=0)
    # 128 images = 2 steps a pass, packed to epochs of 10 steps; 30 steps.
    assert metrics["optimizer_steps"] == 30 and metrics["epochs"] == 3
    explicit = training.train(TrainConfig(model, dataset="digits", limit=128,
                                          image_size=8, epochs=3, batch_size=64),
                              tmp_path / "e",
                              verbose=0)
    assert explicit["optimizer_steps"] == 6 and explicit["epochs"] == 3


def test_warmup_cosine_in_a_very_short_run():
    # A 1-step run (epochs=1 on 64 images) used to ask Keras for a cosine
    # decay of 0 steps.
    for total in (1, 9, 10, 100):
        schedule = training.make_schedule("warmup_cosine", 1e-3, total, 8)
        assert float(schedule(0)) >= 0 and np.isfinite(float(schedule(total - 1)))
    assert float(training.make_schedule("warmup_cosine", 1e-3, 100, 8)(0)) == 0.0


EXACT_RESUME = """
import sys
import numpy as np
import keras
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
from zoo import training
sys.path.insert(0, sys.argv[2])
from helpers import shallow_resnet
MODEL = shallow_resnet()

class Killed(BaseException):
    pass

class KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed()

def config(epochs, min_steps=None):
    steps = {} if min_steps is None else {"min_steps": min_steps}
    return training.TrainConfig(MODEL, dataset="digits", image_size=8, limit=96,
                                batch_size=32, augment="light", epochs=epochs,
                                lr=3e-3, **steps)

class Count(keras.callbacks.Callback):
    epochs = 0
    def on_epoch_begin(self, epoch, logs=None):
        Count.epochs += 1

def run(out, cfg, kill_after=None):
    real = training.default_callbacks
    if kill_after is not None:
        training.default_callbacks = lambda *a, **k: real(*a, **k) + [KillAfter(kill_after)]
        try:
            training.train(cfg, out, verbose=0)
        except Killed:
            pass
    # The epochs the (re)run itself trains: a rerun that started from
    # scratch would end with the same weights (training is deterministic),
    # so only this count tells that it resumed.
    Count.epochs = 0
    training.default_callbacks = lambda *a, **k: real(*a, **k) + [Count()]
    training.train(cfg, out, verbose=0)
    training.default_callbacks = real
    return keras.models.load_model(f"{out}/model.keras").get_weights(), Count.epochs

root = sys.argv[1]
for name, cfg in (("epochs", config(3)), ("packed", config(None, 24))):
    whole, n = run(f"{root}/{name}_whole", cfg)
    resumed, rest = run(f"{root}/{name}_resumed", cfg, kill_after=0)
    same = all(np.array_equal(a, b) for a, b in zip(whole, resumed))
    print(name, "same" if same else "different",
          "resumed" if rest == n - 1 and n > 1 else f"ran-{rest}-of-{n}", flush=True)
"""


@pytest.mark.slow
def test_resumed_run_sees_the_same_batches(tmp_path):
    # Killed after its first epoch and resumed, a run ends with the weights
    # of one that never stopped (op determinism on; augmentation on; plain
    # epochs and packed epochs of several passes).
    script = tmp_path / "exact.py"
    script.write_text(EXACT_RESUME)
    done = subprocess.run([sys.executable, str(script), str(tmp_path),
                           str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=900,
                          env=subprocess_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["epochs", "same", "resumed",
                                   "packed", "same", "resumed"], done.stdout


def test_fine_tune_default_learning_rate_is_the_measured_one():
    # docs/transfer.md: 3e-3 with Adam for LP-FT phase 2; docs/training.md:
    # 3e-3 from scratch too since the rate was measured there (it was 1e-3).
    scratch = TrainConfig("resnet20")
    tuned = TrainConfig("resnet20", weights="fashion_mnist", fine_tune=True)
    assert (scratch.learning_rate, tuned.learning_rate) == (3e-3, 3e-3)
    assert TrainConfig("resnet20", weights="fashion_mnist", fine_tune=True,
                       lr=5e-4).learning_rate == 5e-4
    assert TrainConfig("resnet20", weights="fashion_mnist", fine_tune=True,
                       optimizer="sgd").learning_rate == 0.1


def test_the_training_step_is_traced_once(tmp_path, monkeypatch):
    # Metrics and optimizer variables exist before fit (build_for_fit), so
    # tf.function traces the step once, not a second time for them.
    from keras.src.backend.tensorflow import trainer
    traces = []
    real = trainer.TensorFlowTrainer.train_step

    def counted(self, data):
        traces.append(len(self.metrics_variables))
        return real(self, data)
    monkeypatch.setattr(trainer.TensorFlowTrainer, "train_step", counted)
    config = TrainConfig(shallow_resnet(monkeypatch), dataset="digits", image_size=8,
                         limit=64, batch_size=32, epochs=2, label_smoothing=0.1)
    metrics = training.train(config, tmp_path / "run", verbose=0)
    assert len(traces) == 1 and traces[0] > 0
    assert metrics["optimizer_steps"] == 4 and not math.isnan(metrics["test_loss"])
