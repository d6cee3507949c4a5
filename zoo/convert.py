"""Converting a torchvision/timm checkpoint once into a Keras
`.weights.h5` file (`zoo convert-weights`): built on `zoo.weights` (the
loader) and `zoo.torch_weights` (the checkpoint reader)."""

from __future__ import annotations

from pathlib import Path

from zoo import heads, torch_weights, weight_records
from zoo import weights as weights_lib
from zoo.errors import WeightsError
from zoo.io import atomic_path


def convert(src, name: str, out, *, input_shape=None) -> dict:
    """Writes a torchvision/timm checkpoint as a Keras `.weights.h5` file.

    The model is built with the file's number of classes (or headless when
    the file has no classifier), loaded by name with every key checked, and
    saved atomically. The file carries its weight record
    (`zoo.weight_records.converted`: model, preprocessing "torch" — ImageNet
    mean/std —, classes, input size, first convolution and classifier, the
    source file) in the HDF5 attribute `zoo_record`, which the loaders and
    `zoo.weights.preprocessing_of` read, and the same facts as plain
    attributes for other tools (`zoo.weights.file_info`).

    Example:
        >>> convert("resnet50-11ad3fa6.safetensors", "tv_resnet50", "r50.weights.h5")
    """
    import h5py
    out = Path(out)
    if not out.name.endswith(".weights.h5"):
        raise WeightsError(f"--out must end with .weights.h5; got {out.name!r}.")
    if not torch_weights.supports(name):
        raise torch_weights.TorchWeightsError(
            f"{name} does not have torchvision's layout; models that do: "
            f"{', '.join(torch_weights.supported_models())}.")
    state = torch_weights.read_state_dict(src)
    classes = torch_weights.num_classes(state, name)
    model = weights_lib.create_with_weights(
        name, weights=str(src), num_classes=classes, include_top=classes is not None,
        input_shape=input_shape, classifier_activation=None)
    record = weight_records.converted(
        name, Path(src).name, num_classes=classes, input_shape=model.input_shape[1:],
        first_conv=next(layer.name for layer in model.layers
                        if "Conv" in type(layer).__name__),
        classifier=heads.classifier_name(model) or "", num_params=int(model.count_params()))
    with atomic_path(out) as tmp:
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs[weight_records.RECORD_ATTRIBUTE] = record.to_json()
            f.attrs["zoo_model"] = name
            f.attrs["zoo_preprocessing"] = torch_weights.PREPROCESSING
            f.attrs["zoo_source"] = Path(src).name
            f.attrs["zoo_num_classes"] = classes or 0
    return {"model": name, "num_classes": classes, "params": int(model.count_params()),
            "preprocessing": torch_weights.PREPROCESSING, "out": str(out)}
