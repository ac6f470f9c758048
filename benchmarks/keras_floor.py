"""The floor of benchmarks/pipeline_speed.py: the taxi template's model trained on the same rows with plain
pandas, tf.data and Keras 3 (TF 2.16's own tf.keras), and exported as a SavedModel. No TFX, no Beam, no validation, no analysis pass beyond pandas.

    .venv/bin/python benchmarks/keras_floor.py DATA_CSV OUTPUT_DIR [--steps 1000] [--eval-steps 150] [--batch 40]

Same work as the template: trip_miles z-scored, pickup_latitude in 10 quantile buckets, trip_start_hour one-hot
over 24, the label tips > 0.2 * fare, a [16, 8] network, one epoch of the steps, 2/3 of the rows to train.
"""
import argparse

import numpy as np
import pandas as pd
import tensorflow as tf
import keras


def features_and_label(frame: pd.DataFrame) -> tuple[dict, np.ndarray]:
    miles = frame["trip_miles"].fillna(0.0)
    latitude = frame["pickup_latitude"].fillna(0.0)
    edges = np.quantile(latitude, np.linspace(0, 1, 11)[1:-1])
    features = {
        "trip_miles": ((miles - miles.mean()) / miles.std()).to_numpy("float32"),
        "pickup_latitude": np.searchsorted(edges, latitude, side="right").astype("int64"),
        "trip_start_hour": frame["trip_start_hour"].fillna(0).to_numpy("int64"),
    }
    fare, tips = frame["fare"], frame["tips"].fillna(0.0)
    label = np.where(fare.isna(), 0, tips > 0.2 * fare).astype("float32")
    return features, label


def build_model() -> keras.Model:
    inputs = {
        "trip_miles": keras.Input(shape=(), name="trip_miles", dtype=tf.float32),
        "pickup_latitude": keras.Input(shape=(), name="pickup_latitude", dtype=tf.int64),
        "trip_start_hour": keras.Input(shape=(), name="trip_start_hour", dtype=tf.int64),
    }
    encoded = keras.layers.Concatenate()([
        keras.layers.Reshape((1,))(inputs["trip_miles"]),
        keras.layers.CategoryEncoding(10, output_mode="one_hot")(inputs["pickup_latitude"]),
        keras.layers.CategoryEncoding(24, output_mode="one_hot")(inputs["trip_start_hour"]),
    ])
    hidden = keras.layers.Dense(16, activation="relu")(encoded)
    hidden = keras.layers.Dense(8, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy", metrics=[keras.metrics.AUC()])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_csv")
    parser.add_argument("output_dir")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=40)
    args = parser.parse_args()
    keras.utils.set_random_seed(42)
    frame = pd.read_csv(args.data_csv)
    features, label = features_and_label(frame)
    train = np.arange(len(frame)) % 3 != 2

    def dataset(rows):
        data = tf.data.Dataset.from_tensor_slices(({k: v[rows] for k, v in features.items()}, label[rows]))
        return data.shuffle(10_000, seed=42).repeat().batch(args.batch).prefetch(tf.data.AUTOTUNE)

    model = build_model()
    history = model.fit(dataset(train), steps_per_epoch=args.steps, validation_data=dataset(~train),
                        validation_steps=args.eval_steps, verbose=0)
    model.export(args.output_dir)
    print(f"floor: eval AUC {history.history['val_auc'][-1]:.4f}")


if __name__ == "__main__":
    main()
