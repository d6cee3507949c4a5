"""The shared pipelines: the same batches under every backend (zoo.input_pipeline)."""

import subprocess
import sys

import numpy as np

from helpers import subprocess_env


FIRST_BATCH = """
import sys
import numpy as np
from zoo import data
d = data.load("digits", limit=64, augment="light", channels=3, preprocessing_mode="caffe")
x, y = next(iter(d.train))
np.save(sys.argv[1], x.numpy())
"""


def test_pipeline_and_augmentation_do_not_depend_on_the_backend(tmp_path):
    # The tf.data pipeline (augmentation and scaling included) runs in
    # TensorFlow under every Keras backend, and draws the same batches.
    batches = {}
    for backend in ("tensorflow", "jax"):
        out = tmp_path / f"{backend}.npy"
        done = subprocess.run([sys.executable, "-c", FIRST_BATCH, str(out)],
                              capture_output=True, text=True, timeout=300,
                              env=subprocess_env(KERAS_BACKEND=backend))
        assert done.returncode == 0, done.stderr[-2000:]
        batches[backend] = np.load(out)
    assert np.isfinite(batches["jax"]).all()
    np.testing.assert_array_equal(batches["jax"], batches["tensorflow"])
