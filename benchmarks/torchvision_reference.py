"""Makes the torchvision parity fixtures in tests/data/torchvision/.

    python benchmarks/torchvision_reference.py      # needs torch + torchvision
    python benchmarks/torchvision_reference.py vgg11    # only the models named
    python benchmarks/torchvision_reference.py --pth-fixtures   # needs torch


For each model it writes the state dict's keys and shapes (`NAME.json`) and
torchvision's logits on a fixed input (`NAME_logits.npy`). The weights are
not stored: they are drawn from a seeded numpy generator, key by key, by
`seeded_state_dict` below, which the test (tests/test_torch_weights.py)
runs again without torch, imports through zoo and compares logits.

Run it in a scratch environment (PyPI's default torch/torchvision wheels,
~5.5 GB with CUDA libraries, run on the CPU); torch is never a test
dependency. It also checks that timm's ResNet-50 has torchvision's keys and
shapes, and prints the trainable parameter counts of each torchvision model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "torchvision"
# zoo name: (torchvision builder, input size). AlexNet needs 224 for its
# 6×6 features (torchvision pools adaptively to 6×6; the zoo model is built
# at 224, where that pooling is an identity).
MODELS = {
    "alexnet": ("alexnet", 224),
    "resnet18": ("resnet18", 64),
    "resnext50_32x4d": ("resnext50_32x4d", 64),
    "tv_resnet50": ("resnet50", 64),
    # At 32×32 torchvision's AdaptiveAvgPool2d((7, 7)) spreads the 1×1
    # feature map over 7×7, which the zoo model must do the same way.
    "vgg11": ("vgg11", 32),
}
NUM_CLASSES = 10


def seeded_state_dict(keys_shapes, seed=0) -> dict[str, np.ndarray]:
    """Weights of plausible scale, drawn key by key from one generator.

    Convolution and linear weights are He-normal, BN weights and running
    variances uniform in [0.5, 1.5], biases and running means N(0, 0.1²), so
    activations stay finite through 50 layers.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in keys_shapes:
        shape = tuple(shape)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = np.zeros(shape, np.int64)
        elif leaf in ("running_var",) or (leaf == "weight" and len(shape) == 1):
            out[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif leaf == "weight":
            fan_in = int(np.prod(shape[1:]))
            out[key] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        else:                                   # bias, running_mean
            out[key] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    return out


def reference_input(size, seed=1) -> np.ndarray:
    """(2, size, size, 3) channels-last images, already normalised."""
    return np.random.default_rng(seed).standard_normal((2, size, size, 3)).astype(np.float32)


def pth_fixtures():
    """Small files written by torch.save for the `.pth` reading path
    (tests/test_torch_weights.py reads them with torch when it is installed):
    a training checkpoint of a DataParallel model (its state dict under
    "state_dict", "module."-prefixed keys, float16, bfloat16 and int64
    tensors) with the arrays it must read as (`pth_checkpoint.npz`), and a
    file holding a list of tensors instead of a state dict."""
    import torch
    rng = np.random.default_rng(0)
    arrays = {"conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float16),
              "bn1.running_var": rng.uniform(0.5, 1.5, 4).astype(np.float32),
              "bn1.num_batches_tracked": np.array(7, np.int64),
              "fc.bias": rng.standard_normal(10).astype(np.float32)}
    state = {f"module.{k}": torch.from_numpy(v) for k, v in arrays.items()}
    state["module.fc.bias"] = state["module.fc.bias"].to(torch.bfloat16)
    expected = {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
                for k, v in ((k[len("module."):], v) for k, v in state.items())}
    torch.save({"state_dict": state, "epoch": 3}, OUT / "pth_checkpoint.pth")
    np.savez(OUT / "pth_checkpoint.npz", **expected)
    torch.save([torch.zeros(2)], OUT / "pth_list.pth")
    print(f"torch {torch.__version__}: wrote pth_checkpoint.pth (+ .npz) and pth_list.pth")
    return 0


def main():
    if "--pth-fixtures" in sys.argv[1:]:
        return pth_fixtures()
    import torch
    import torchvision
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    only = [a for a in sys.argv[1:] if not a.startswith("-")] or list(MODELS)
    for name, (builder, size) in MODELS.items():
        if name not in only:
            continue
        model = getattr(torchvision.models, builder)(weights=None, num_classes=NUM_CLASSES)
        model.eval()
        keys_shapes = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        state = seeded_state_dict(keys_shapes)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        x = reference_input(size)
        logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
        (OUT / f"{name}.json").write_text(json.dumps(
            {"torchvision_builder": builder, "input_size": size,
             "num_classes": NUM_CLASSES, "torch": torch.__version__,
             "torchvision": torchvision.__version__, "keys": keys_shapes}))
        np.save(OUT / f"{name}_logits.npy", logits.astype(np.float32))
        params = sum(p.numel() for p in getattr(torchvision.models, builder)(
            weights=None).parameters() if p.requires_grad)
        print(f"{name:18s} {len(keys_shapes):4d} keys, logits {logits.shape}, "
              f"trainable params at 1000 classes {params:,}")
    try:
        import timm
    except ImportError:
        print("timm not installed: key check skipped")
        return 0
    tv = torchvision.models.resnet50(weights=None).state_dict()
    tm = timm.create_model("resnet50", pretrained=False).state_dict()
    same = list(tv) == list(tm) and all(tv[k].shape == tm[k].shape for k in tv)
    print(f"timm {timm.__version__} resnet50 has torchvision's keys and shapes: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
