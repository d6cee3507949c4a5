"""`zoo export` and `zoo compress` (the application layer: it imports
`zoo.compression`, inside the command)."""

from __future__ import annotations

import sys

from zoo.cli_args import add_data_args, command


def cmd_export(args) -> int:
    """Export a .keras model as a TensorFlow SavedModel, a LiteRT .tflite file
    and/or an ONNX file; each is run back (TensorFlow, LiteRT,
    onnxruntime) on one batch and compared with Keras; equivalence.json
    records it."""
    import keras
    from zoo import export, inference
    # Formats, packages and backend are checked before the model is loaded.
    formats = export.check_formats(args.formats, keras.backend.backend())
    export.check_tolerance(args.tolerance)
    model = inference.load_keras(args.model)
    batch = None
    if args.dataset:
        from zoo import data as data_lib
        shape = model.input_shape[1:]
        data = data_lib.load(args.dataset, data_dir=args.data_dir,
                             image_size=tuple(shape[:2]), channels=shape[2],
                             batch_size=16, validation_split=0.0)
        batch = next(iter(data.test))[0]
    results = export.export(model, args.out, formats, batch=batch,
                            tolerance=args.tolerance)
    failed = [f for f, r in results.items() if not r["ok"]]
    if failed:
        print(f"zoo: error: {', '.join(failed)} differ from the Keras model by more "
              f"than {args.tolerance:g} (see {args.out}/equivalence.json)",
              file=sys.stderr)
        return 1
    return 0


def _export_parser(sub):
    p = command(sub, "export", cmd_export, "write SavedModel, LiteRT and ONNX "
                 "files, each checked against the Keras model")
    p.add_argument("model", help="model.keras")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--formats", default="saved_model,tflite",
                   help="comma-separated: saved_model, tflite, onnx (onnx needs "
                        'pip install "cnn-zoo[onnx]")')
    p.add_argument("--dataset", help="check on the first 16 test images of this "
                                     "dataset (default: 8 random images)")
    p.add_argument("--data-dir")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest absolute output difference allowed (default 1e-4)")


def cmd_compress(args) -> int:
    """Compress a .keras model (a zoo model or a Keras 3 CNN) with TF-MOT
    (pruning, clustering, quantization-aware training) and the LiteRT
    converter; writes model.tflite, float.tflite, report.json, report.md
    and report.png into --out."""
    # Imported here: `zoo` itself never imports compression (or TF-MOT).
    from zoo.compression import compress
    report = compress(args.model, args.dataset, data_dir=args.data_dir,
                      out=args.out, preset=args.preset, prune=args.prune,
                      structure=args.structure, clusters=args.cluster, init=args.init,
                      quantize=None if args.quantize == "none" else args.quantize,
                      steps=args.steps, epochs=args.epochs, learning_rate=args.lr,
                      io=args.io, latency_runs=args.latency_runs,
                      distribution=args.distribution,
                      verbose=2 if args.verbose else 0)
    base, final = report["variants"][0], report["variants"][-1]
    if report["resumed_steps"]:
        print(f"resumed: {', '.join(report['resumed_steps'])} finished in an "
              "earlier run (progress.json)")
    print(f"float: accuracy {base['accuracy']:.4f}, {base['gzip_bytes'] / 1e3:.0f} kB gzip; "
          f"compressed: accuracy {final['accuracy']:.4f}, "
          f"{final['gzip_bytes'] / 1e3:.0f} kB gzip "
          f"({base['gzip_bytes'] / final['gzip_bytes']:.1f}× smaller; "
          f"{base['xz_bytes'] / final['xz_bytes']:.1f}× under xz); "
          f"outputs in {args.out}")
    return 0


def _compress_parser(sub):
    p = command(sub, "compress", cmd_compress,
                 "prune, cluster and quantize a model to LiteRT")
    p.add_argument("model", help="model.keras")
    add_data_args(p, out="output folder")
    from zoo.compression.options import CENTROID_INITS, DISTRIBUTIONS, QUANTIZE_MODES
    from zoo.compression.presets import PRESETS
    described = "; ".join(f"{name}: " + ", ".join(f"{k} {v}" for k, v in values.items())
                          for name, values in PRESETS.items())
    p.add_argument("--preset", choices=tuple(PRESETS),
                   help=f"{described} (flags given beside it win)")
    p.add_argument("--prune", type=float, metavar="SPARSITY",
                   help="magnitude pruning to this sparsity, e.g. 0.8")
    p.add_argument("--distribution", choices=DISTRIBUTIONS,
                   help="how --prune is spread over the layers: uniform (each "
                        "at SPARSITY) or erk (larger layers pruned harder, the "
                        "same zeros in all); default: the preset's, else uniform")
    p.add_argument("--structure", metavar="M:N", help="structured sparsity, e.g. 2:4")
    p.add_argument("--cluster", type=int, metavar="K", help="weight clustering, K >= 2")
    p.add_argument("--init",
                   help=f"cluster centroids: {' | '.join(CENTROID_INITS)} (default "
                        f"{CENTROID_INITS[0]})")
    p.add_argument("--quantize", default="auto",
                   choices=("auto", *(m for m in QUANTIZE_MODES if m), "none"),
                   help="auto (default): the preset's, else int8")
    p.add_argument("--io", default="float", choices=("float", "int8"),
                   help="input/output type of int8 models")
    p.add_argument("--steps", type=int, metavar="N",
                   help="optimizer steps of each fine-tuning step (default: at "
                        "least 1000 for pruning, 300 for clustering and QAT, or "
                        "two passes over the data, four with --preset deep)")
    p.add_argument("--epochs", type=int,
                   help="instead of --steps: passes over the data per step")
    p.add_argument("--lr", type=float,
                   help="Adam's peak learning rate of pruning; a tenth of it for "
                        "clustering and QAT; each step decays it to zero on a "
                        "cosine (default 3e-3)")
    p.add_argument("--latency-runs", type=int, default=50)
    p.add_argument("--verbose", action="store_true")


def add_parsers(sub):
    """export, compress."""
    _export_parser(sub)
    _compress_parser(sub)
