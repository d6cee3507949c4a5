"""zoo.io: atomic writes and portable model files."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from helpers import subprocess_env
from zoo import training
from zoo.inference import load_keras
from zoo.io import OPTIONS_MEMBER, save_model, saved_options

# Loads a .keras file with plain Keras in a process where zoo (and our
# other packages) cannot be imported, and saves its predictions.
WITHOUT_ZOO = """
import sys
class NoZoo:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("zoo", "tuning", "compression"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, NoZoo())
import keras, numpy as np
model = keras.saving.load_model(sys.argv[1])          # safe_mode=True by default
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
print(type(model).__name__, [m for m in sys.modules if m.split(".")[0] == "zoo"])
"""


@pytest.mark.slow
def test_a_trained_model_loads_and_predicts_identically_where_zoo_cannot_be_imported(
        tmp_path):
    # resnet20 used a custom layer (the option-A shortcut) and a Model
    # subclass: "Could not locate class 'ZooModel'" without zoo. The
    # straight-line schedule is zoo's own class (zoo.optim): the file holds
    # the rate it reached instead, or Keras could not rebuild the optimizer.
    metrics = training.train(training.TrainConfig(
        "resnet20", dataset="digits", epochs=1, limit=128, batch_size=32,
        schedule="warmup_linear"), tmp_path / "run", verbose=0)
    assert metrics["test_accuracy"] > 0
    model = load_keras(tmp_path / "run" / "model.keras")
    assert model.zoo_options["model"] == "resnet20"      # zoo still reads them
    x = np.random.default_rng(0).random((5, *model.input_shape[1:]), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ZOO, str(tmp_path / "run" / "model.keras"),
         str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True, text=True, timeout=300, env=subprocess_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["Functional", "[]"], done.stdout
    expected = model.predict(x, verbose=0)
    assert np.ptp(expected) > 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=0, atol=1e-6)


def test_save_model_keeps_the_options_beside_the_config(tmp_path):
    import zoo
    model = zoo.create_model("mobilenet_v2_050_cifar", num_classes=3, input_shape=(16, 16, 3))
    save_model(model, tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert OPTIONS_MEMBER in archive.namelist()
        assert b"ZooModel" not in archive.read("config.json")
    assert saved_options(tmp_path / "m.keras") == dict(model.zoo_options)
    assert saved_options(tmp_path / "m.keras")["num_classes"] == 3
    plain = tmp_path / "plain.keras"
    model.save(plain)                         # Keras' own save: no options, loads
    assert saved_options(plain) is None
    assert not hasattr(load_keras(plain), "zoo_options") or \
        load_keras(plain).zoo_options is None
