"""Loading trained models safely and running them (.keras and .tflite)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from zoo import preprocessing
from zoo.errors import InputError, check_positive_int
from zoo.io import saved_options


class ModelFileError(InputError):
    """A file that is not a model of the expected kind."""


def load_keras(path, compile=False):
    """Loads a `.keras` file with `safe_mode=True` (no code is run).

    Not compiled by default: evaluation, prediction, export and compression
    need no optimizer, and compiling would restore the training optimizer's
    state only to warn that it was skipped."""
    import keras
    path = check_file(path, "Model file", "give the .keras file inside it", ModelFileError)
    if path.suffix == ".tflite":
        raise ModelFileError(f"{path} is a LiteRT model; this command needs a "
                             ".keras file.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a .keras model file (a zip archive "
                             "written by model.save).")
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=compile)
        options = saved_options(path)
    except Exception as err:
        raise ModelFileError(f"Cannot load {path}: {type(err).__name__}: "
                             f"{str(err)[:300]}") from None
    if options is not None:
        model.zoo_options = options
    return model


class TFLiteModel:
    """A `.tflite` file run with LiteRT's interpreter, batch by batch."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter
        path = check_file(path, "Model file", "give the .tflite file inside it",
                          ModelFileError)
        from zoo.startup import native_stderr_hidden
        try:
            with native_stderr_hidden():     # LiteRT's "Created … delegate" line
                self.interpreter = Interpreter(model_path=str(path),
                                               num_threads=num_threads)
                self.interpreter.allocate_tensors()
        except Exception as err:
            raise ModelFileError(f"{path} is not a valid LiteRT (.tflite) model: "
                                 f"{str(err)[:200]}") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_shape(self):
        return tuple(int(d) for d in self.input["shape"])

    def _quantize(self, x):
        dtype = self.input["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        return x.astype(dtype)

    def _dequantize(self, y):
        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def predict(self, x):
        """Runs each sample (batch 1 models) or the whole batch."""
        x = np.asarray(x, np.float32)
        batch = self.input_shape[0]
        outputs = []
        step = batch if batch > 0 else len(x)
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            if len(chunk) != batch:
                self.interpreter.resize_tensor_input(self.input["index"], chunk.shape)
                self.interpreter.allocate_tensors()
                self.input = self.interpreter.get_input_details()[0]
                self.output = self.interpreter.get_output_details()[0]
                batch = len(chunk)
            self.interpreter.set_tensor(self.input["index"], self._quantize(chunk))
            self.interpreter.invoke()
            outputs.append(self._dequantize(
                self.interpreter.get_tensor(self.output["index"])))
        return np.concatenate(outputs)


def load_any(path):
    """A Keras model for .keras, a TFLiteModel for .tflite."""
    path = Path(path)
    if path.suffix == ".tflite":
        return TFLiteModel(path)
    return load_keras(path)


def run_card(path) -> dict:
    """config.json / metrics.json written by `zoo train` beside a model."""
    folder = Path(path).parent
    card = {}
    for name in ("config.json", "metrics.json"):
        f = folder / name
        if f.is_file():
            try:
                card[name[:-5]] = json.loads(f.read_text())
                if not isinstance(card[name[:-5]], dict):
                    raise ValueError("not an object")
            except ValueError:
                # Falling back would print numeric class names without a word.
                raise InputError(f"{f} (beside the model) is damaged, so the "
                                 "model's class names and preprocessing are unknown; "
                                 "repair or delete it.") from None
    return card


def class_names(path, num_classes):
    card = run_card(path)
    names = card.get("metrics", {}).get("dataset", {}).get("class_names")
    if names and len(names) == num_classes:
        return list(names)
    return [str(i) for i in range(num_classes)]


def saved_preprocessing(path, default="unit"):
    """The preprocessing recorded in config.json beside a model (`default`
    when there is none); a damaged config.json is refused, not guessed."""
    config = Path(path).parent / "config.json"
    if config.is_file():
        try:
            mode = json.loads(config.read_text()).get("preprocessing", default)
        except (ValueError, AttributeError):
            raise InputError(f"{config} (beside the model) is damaged, so the "
                             "model's preprocessing is unknown; pass --preprocessing "
                             "(unit, tf, caffe, torch or raw) or repair the file."
                             ) from None
        return preprocessing.check_mode(mode)
    return default


def probabilities(outputs) -> np.ndarray:
    """Class probabilities from a model's outputs: softmax outputs as they
    are, logits (classifier_activation=None) through a softmax."""
    outputs = np.asarray(outputs, np.float64)
    if outputs.min() >= 0 and np.allclose(outputs.sum(-1), 1.0, atol=1e-3):
        return outputs
    shifted = outputs - outputs.max(-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(-1, keepdims=True)


def evaluate(path, source, *, data_dir=None, batch_size=128, preprocessing_mode=None,
             limit=None) -> dict:
    """Accuracy (and loss for .keras) of a model file on a dataset's test split."""
    from zoo import data as data_lib
    data_lib.check_source(source, data_dir)
    check_positive_int(batch_size, "batch_size")
    if limit is not None:
        check_positive_int(limit, "limit")
    if preprocessing_mode is not None:
        preprocessing.check_mode(preprocessing_mode)
    model = load_any(path)
    shape = model.input_shape[1:] if hasattr(model, "inputs") else model.input_shape[1:]
    mode = preprocessing_mode or saved_preprocessing(path)
    data = data_lib.load(source, data_dir=data_dir, image_size=tuple(shape[:2]),
                         channels=shape[2], batch_size=batch_size,
                         validation_split=0.0, preprocessing_mode=mode)
    num_out = (model.output_shape[-1] if hasattr(model, "inputs")
               else model.output["shape"][-1])
    if data.info.num_classes > num_out:
        raise InputError(f"{source} has {data.info.num_classes} classes but the "
                         f"model predicts {num_out}.")
    correct = total = 0
    losses = []
    for x, y in data.test:
        if limit is not None and total >= limit:
            break
        x, y = np.asarray(x), np.asarray(y)
        if limit is not None:
            x, y = x[:limit - total], y[:limit - total]
        probs = probabilities(model.predict(x, verbose=0) if hasattr(model, "inputs")
                              else model.predict(x))
        correct += int((probs.argmax(-1) == y).sum())
        total += len(y)
        p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
        losses.append(-np.log(p))
    return {"accuracy": correct / max(total, 1),
            "loss": float(np.concatenate(losses).mean()) if losses else None,
            "examples": total, "model": str(path), "dataset": source}


def check_file(path, what, folder_hint, error=InputError) -> Path:
    """`path` as a Path when it is a file; else `error` saying whether it is
    missing or a folder (with `folder_hint`)."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {str(path)!r} is a folder; {folder_hint}.")
    if not path.is_file():
        raise error(f"{what} {str(path)!r} does not exist.")
    return path


def load_images(paths, shape):
    """Loads image files resized to the model's (h, w, c), values in [0, 255]."""
    import keras
    h, w, c = shape
    images = []
    for p in paths:
        check_file(p, "Image file", "give image files, e.g. DIR/*.png")
        try:
            img = keras.utils.load_img(p, target_size=(h, w),
                                       color_mode="grayscale" if c == 1 else "rgb")
        except Exception as err:
            reason = "it is empty" if Path(p).stat().st_size == 0 else \
                f"{type(err).__name__}: {str(err).split(' <')[0]}"
            raise InputError(f"Cannot read {p} as an image ({reason}).") from None
        images.append(keras.utils.img_to_array(img))
    return np.stack(images)


def predict(path, image_paths, *, top_k=5, preprocessing_mode=None):
    """Top-k (class name, probability) for each image file."""
    check_positive_int(top_k, "top_k")
    if preprocessing_mode is not None:
        preprocessing.check_mode(preprocessing_mode)
    model = load_any(path)
    shape = model.input_shape[1:]
    mode = preprocessing_mode or saved_preprocessing(path)
    x = np.asarray(preprocessing.scale(load_images(image_paths, shape), mode))
    probs = probabilities(model.predict(x, verbose=0) if hasattr(model, "inputs")
                          else model.predict(x))
    names = class_names(path, probs.shape[-1])
    results = []
    for p in probs:
        order = np.argsort(-p)[:top_k]
        results.append([(names[i], float(p[i])) for i in order])
    return results
