"""The private APIs of the stack that the package still uses (issue #29),
each with the version it was checked on (the comment at its use names this
file): these tests fail when an upgrade removes or changes one, instead of
the feature that relies on it failing somewhere else.

Replaced by public APIs: argparse's `_actions` and action classes
(zoo.cli_args.CommandParser keeps the declared actions) and keras-tuner's
`Tuner._try_build` (tuning.search builds through the HyperModel)."""

import numpy as np
import keras
import keras_tuner


def test_keras_optimizer_var_key_identifies_a_variable():
    # zoo.transfer.scale_backbone_lr (Keras 3.15.1)
    optimizer = keras.optimizers.Adam()
    a, b = keras.Variable(1.0), keras.Variable(1.0)
    assert optimizer._var_key(a) == optimizer._var_key(a)
    assert optimizer._var_key(a) != optimizer._var_key(b)


def test_keras_random_layers_give_their_seed_generator():
    # zoo.augment.seed_generators (Keras 3.15.1)
    layer = keras.layers.RandomTranslation(0.1, 0.1, seed=1)
    assert isinstance(layer._get_seed_generator(keras.backend.backend()),
                      keras.random.SeedGenerator)


def test_keras_tensors_know_the_layer_that_made_them():
    # zoo.heads (Keras 3.15.1)
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(2)
    outputs = dense(inputs)
    assert outputs._keras_history[0] is dense


def test_tf_keras_tensors_know_the_layer_that_made_them():
    # compression.quantize (tf_keras 2.21)
    from zoo.compression import bridge
    tfk = bridge.tf_keras_module()
    dense = tfk.layers.Dense(2)
    outputs = dense(tfk.Input((4,)))
    assert outputs._keras_history.layer is dense


def test_backup_and_restore_writes_through_save_model(tmp_path):
    # zoo.callbacks.Backup (Keras 3.15.1): the override must be what writes.
    calls = []

    class Spy(keras.callbacks.BackupAndRestore):
        def _save_model(self):
            calls.append(True)
            super()._save_model()

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0,
              callbacks=[Spy(str(tmp_path / "backup"))])
    assert calls


def test_keras_tuner_builds_through_build_hypermodel(tmp_path):
    # tuning.search's Recording tuner (keras-tuner 1.4.8): Hyperband's
    # run_trial builds its model in _build_hypermodel.
    built = []

    class Spy(keras_tuner.RandomSearch):
        def _build_hypermodel(self, hp):
            built.append(True)
            return super()._build_hypermodel(hp)

    def build(hp):
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    tuner = Spy(build, objective="loss", max_trials=1, overwrite=True,
                directory=str(tmp_path), project_name="spy")
    tuner._try_build(keras_tuner.HyperParameters())   # what run_trial calls
    assert built


def test_litert_interpreter_lists_its_ops(tmp_path):
    # compression.report (ai-edge-litert 2.3.0)
    from ai_edge_litert.interpreter import Interpreter
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3)])
    model.export(str(tmp_path / "m.tflite"), format="litert", verbose=False)
    interpreter = Interpreter(model_path=str(tmp_path / "m.tflite"))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    assert any(op["op_name"] == "CONV_2D" and len(op["inputs"]) >= 2 for op in ops)


def test_keras_names_its_home_folder():
    # zoo.weight_files.keras_cache: where keras.utils.get_file caches
    # keras.applications' files, KERAS_HOME-aware (Keras 3.15.1; no public
    # function gives it).
    from keras.src.backend.config import keras_home
    assert isinstance(keras_home(), str) and keras_home()
