"""preprocessing_fn through tf.Transform's Beam implementation, on a few rows with known answers."""
import math

import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.transform import preprocessing_fn

SETTINGS = {
    "features": [
        {"name": "fare", "treatment": "zscore", "fill_value": None},
        {"name": "trip_start_hour", "treatment": "identity", "buckets": 24, "fill_value": None},
        {"name": "payment_type", "treatment": "vocabulary", "top_k": 2, "oov_buckets": 1, "fill_value": None},
        {"name": "trip_miles", "treatment": "bucketize", "buckets": 2, "fill_value": None},
        {"name": "company", "treatment": "vocabulary", "top_k": 10, "oov_buckets": 1, "fill_value": "none"},
    ],
    "label": {"name": "big_tipper", "source": "tips", "rule": "ratio_above", "denominator": "fare", "threshold": 0.2},
}

FEATURE_SPEC = {
    "fare": tf.io.FixedLenFeature([], tf.float32),
    "tips": tf.io.FixedLenFeature([], tf.float32),
    "trip_start_hour": tf.io.FixedLenFeature([], tf.int64),
    "payment_type": tf.io.FixedLenFeature([], tf.string),
    "trip_miles": tf.io.FixedLenFeature([], tf.float32),
    "company": tf.io.VarLenFeature(tf.string),   # optional in the schema: may be missing
}

ROWS = [
    {"fare": 10.0, "tips": 3.0, "trip_start_hour": 5, "payment_type": "Credit Card", "trip_miles": 1.0, "company": ["A"]},
    {"fare": 20.0, "tips": 0.0, "trip_start_hour": 30, "payment_type": "Cash", "trip_miles": 2.0, "company": []},
    {"fare": 30.0, "tips": 6.0, "trip_start_hour": 23, "payment_type": "Cash", "trip_miles": 8.0, "company": ["A"]},
    {"fare": 0.0, "tips": 1.0, "trip_start_hour": 0, "payment_type": "Dispute", "trip_miles": 9.0, "company": ["B"]},
]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(FEATURE_SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft")), force_tf_compat_v1=False):
        (rows, _), _ = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, SETTINGS))
    return rows


def test_zscore_uses_mean_and_stddev_of_the_data(transformed):
    fares = [row["fare"] for row in ROWS]
    mean = sum(fares) / len(fares)
    std = math.sqrt(sum((f - mean) ** 2 for f in fares) / len(fares))
    assert [row["fare_xf"] for row in transformed] == pytest.approx([(f - mean) / std for f in fares], rel=1e-5)


def test_identity_is_clipped_into_its_buckets(transformed):
    assert [row["trip_start_hour_xf"] for row in transformed] == [5, 23, 23, 0]


def test_vocabulary_orders_by_frequency_and_sends_the_rest_out_of_vocabulary(transformed):
    # top_k=2: Cash (2 rows) is index 0, then one of the single-count values; the third value is OOV (index 2).
    indices = [row["payment_type_xf"] for row in transformed]
    assert indices[1] == indices[2] == 0
    assert sorted([indices[0], indices[3]]) == [1, 2]


def test_bucketize_splits_at_the_median(transformed):
    assert [row["trip_miles_xf"] for row in transformed] == [0, 0, 1, 1]


def test_missing_optional_feature_takes_its_fill_value(transformed):
    # company: A, (missing → "none"), A, B → A is most frequent (0); "none" and B are the other entries.
    companies = [row["company_xf"] for row in transformed]
    assert companies[0] == companies[2] == 0
    assert companies[1] != 0 and companies[3] != 0 and companies[1] != companies[3]


def test_label_is_tips_over_fare_above_threshold_and_false_for_zero_fare(transformed):
    assert [row["big_tipper"] for row in transformed] == [1, 0, 0, 0]
