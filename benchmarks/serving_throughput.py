"""Benchmark: CPU throughput of the pushed model's serving_default against the bare Keras model.

    .venv/bin/python benchmarks/serving_throughput.py [--config pipeline.yaml] [--model-dir DIR] [--seconds 3]

serving_default takes serialized tf.Examples and runs parsing and the tf.Transform graph inside;
the bare Keras model (the exported `tpu_core` function: the Keras model's call, nothing else) gets
tensors that were transformed beforehand. Both run as graph functions of the loaded SavedModel in
this process, at batch 1, 32 and 256, on the first 2,048 rows of the default data; the ratio of their
throughputs is what putting the transform inside the serving graph costs. Needs a pushed model
(`make run` first, or --model-dir).
"""
import argparse
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

BATCH_SIZES = (1, 32, 256)
ROWS = 2048


def measure(call, batches, seconds: float) -> tuple[float, float]:
    """(examples per second, median ms per call), calling over the batches for about `seconds`."""
    for batch in batches[:3]:
        call(batch)  # first calls: graph building and caches
    times, examples, started = [], 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for batch in batches:
            begin = time.perf_counter()
            call(batch)
            times.append(time.perf_counter() - begin)
            examples += batch["size"]
    return examples / sum(times), statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "pipeline.yaml"))
    parser.add_argument("--model-dir", help="SavedModel version folder (default: the served version)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    args = parser.parse_args()

    import tensorflow as tf
    from tabulate import tabulate

    from components.features import serving_feature_spec
    from pipeline.config import load_config
    from pipeline.predict import raw_feature_spec, read_examples, served_version_dir

    config = load_config(args.config)
    model_dir = pathlib.Path(args.model_dir) if args.model_dir else served_version_dir(config.serving_dir)
    if model_dir is None:
        print(f"no pushed model under {config.serving_dir}: run `make run` first, or pass --model-dir", file=sys.stderr)
        return 1
    raw_spec = raw_feature_spec(config)
    data = config.path(config.data.base)
    csv_files = sorted(data.glob(config.data.span_pattern.replace("{SPAN:2}", "*").replace("{SPAN}", "*")))
    labelled = [example for path in csv_files for example in read_examples(path, raw_spec)[1]][:ROWS]
    examples = [tf.train.Example.FromString(example.SerializeToString()) for example in labelled]
    request_spec = serving_feature_spec(raw_spec, config.transform_settings())
    for example in examples:
        for name in list(example.features.feature):
            if name not in request_spec:
                del example.features.feature[name]

    loaded = tf.saved_model.load(str(model_dir))
    serve = loaded.signatures["serving_default"]
    transform = loaded.signatures["transform_features"]
    specs = loaded.tpu_core.input_signature[0]
    bare = loaded.tpu_core.get_concrete_function(specs)  # a concrete function, called like a signature
    input_names = set(specs)
    print(f"model {model_dir}; {len(examples)} rows of {data}; {args.seconds:g} s per measurement; "
          f"TensorFlow {tf.__version__}, {tf.config.threading.get_inter_op_parallelism_threads() or 'default'} inter-op threads")

    rows = []
    for size in BATCH_SIZES:
        starts = range(0, len(examples) - size + 1, size)
        serialized = [{"size": size, "examples": tf.constant([e.SerializeToString() for e in examples[s:s + size]])}
                      for s in starts]
        transformed = []
        for s in starts:
            features = transform(examples=tf.constant([e.SerializeToString() for e in labelled[s:s + size]]))
            transformed.append({"size": size, "features": {n: v for n, v in features.items() if n in input_names}})
        served, served_ms = measure(lambda b: serve(examples=b["examples"]), serialized, args.seconds)
        keras_rate, keras_ms = measure(lambda b: bare(b["features"]), transformed, args.seconds)
        rows.append({"batch": size, "serving_default ex/s": served, "ms/call": served_ms,
                     "bare Keras ex/s": keras_rate, "Keras ms/call": keras_ms,
                     "bare Keras / serving_default": keras_rate / served})
    print(tabulate(rows, headers="keys", floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
