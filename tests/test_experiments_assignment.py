"""Salted assignment: stable buckets, allocation order, Spark == Python, independent salts."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T
from scipy import stats

from setlist.config import DEFAULT_CONF_DIR, ExperimentConfig, load_config
from setlist.errors import ConfigError
from setlist.experiments.assignment import (
    assign_users, assign_variant, bucket_bounds, bucket_of, variant_of_bucket)


def experiment(name="home_ranker", salt="salt-a", allocation=None, bucket_count=10_000):
    allocation = allocation or {"control": 0.5, "treatment": 0.5}
    return ExperimentConfig(name=name, salt=salt, allocation=allocation,
                            models={v: "champion" for v in allocation}, bucket_count=bucket_count)


def test_bucket_is_first_15_hex_digits_of_salted_sha256_mod_buckets():
    # Golden values pin the scheme: changing it would silently reassign every live user.
    assert [bucket_of(u, "salt-a", 10_000) for u in ["u1", "alice", 42, ""]] == [9986, 647, 523, 5680]
    digest = hashlib.sha256(b"salt-a:alice").hexdigest()
    assert bucket_of("alice", "salt-a", 10_000) == int(digest[:15], 16) % 10_000


def test_bucket_is_identical_in_another_python_process_with_another_hash_seed():
    code = ("from setlist.experiments.assignment import bucket_of;"
            "print([bucket_of(f'user{i}', 'salt-a', 10000) for i in range(50)])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str([bucket_of(f"user{i}", "salt-a", 10_000) for i in range(50)])


def test_buckets_are_cut_into_ranges_in_allocation_order():
    exp = experiment(allocation={"control": 0.5, "a": 0.3, "b": 0.2})
    assert bucket_bounds(exp) == [("control", 5000), ("a", 8000), ("b", 10_000)]
    assert [variant_of_bucket(b, exp) for b in [0, 4999, 5000, 7999, 8000, 9999]] == \
        ["control", "control", "a", "a", "b", "b"]


def test_shares_of_many_users_match_allocation():
    exp = experiment(allocation={"control": 0.5, "a": 0.3, "b": 0.2})
    n = 30_000
    counts = Counter(assign_variant(f"user{i}", exp) for i in range(n))
    observed = [counts[v] for v in exp.allocation]
    _, p_value = stats.chisquare(observed, [share * n for share in exp.allocation.values()])
    assert p_value > 0.001
    assert set(counts) == set(exp.allocation)


def test_different_salts_assign_independently():
    first, second = experiment(salt="salt-a"), experiment(salt="salt-b")
    users = [f"user{i}" for i in range(20_000)]
    table = pd.crosstab(pd.Series([assign_variant(u, first) for u in users]),
                        pd.Series([assign_variant(u, second) for u in users]))
    _, p_value, _, _ = stats.chi2_contingency(table)
    assert p_value > 0.01
    # The same test detects dependence when the salt is shared.
    same = pd.crosstab(pd.Series([assign_variant(u, first) for u in users]),
                       pd.Series([assign_variant(u, experiment(name="other", salt="salt-a")) for u in users]))
    assert stats.chi2_contingency(same)[1] < 1e-100


def test_spark_assignment_matches_python_for_string_ids(spark):
    exp = experiment(allocation={"control": 0.34, "a": 0.33, "b": 0.33})
    users = [f"user{i}" for i in range(300)] + ["", "ünïcode-ü"]
    schema = T.StructType([T.StructField("user_id", T.StringType())])
    expected_schema = T.StructType([
        T.StructField("experiment", T.StringType(), False), T.StructField("user_id", T.StringType()),
        T.StructField("bucket", T.IntegerType()), T.StructField("variant", T.StringType())])
    expected = spark.createDataFrame(
        [(exp.name, u, bucket_of(u, exp.salt, exp.bucket_count), assign_variant(u, exp)) for u in users],
        expected_schema)
    actual = assign_users(spark.createDataFrame([(u,) for u in users], schema), exp)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_spark_assignment_matches_python_for_integer_ids(spark):
    exp = experiment(salt="int-salt", bucket_count=997)
    users = list(range(200)) + [2 ** 62]
    actual = {r.user_id: (r.bucket, r.variant) for r in assign_users(
        spark.createDataFrame([(u,) for u in users], "user_id long"), exp).collect()}
    assert actual == {u: (bucket_of(u, exp.salt, 997), assign_variant(u, exp)) for u in users}


def test_allocation_not_summing_to_one_names_the_experiment():
    with pytest.raises(ConfigError, match="experiment 'home_ranker'.*sum to 0.9"):
        experiment(allocation={"control": 0.5, "treatment": 0.4})


def test_config_file_with_allocation_not_summing_to_one_stops_loading(tmp_path):
    extra = tmp_path / "bad.yaml"
    extra.write_text(
        "experiments:\n  experiments:\n  - name: search_v2\n    salt: s\n"
        "    allocation: {control: 0.5, treatment: 0.6}\n"
        "    models: {control: champion, treatment: 7}\n")
    with pytest.raises(ConfigError, match="experiment 'search_v2'.*sum to 1.1"):
        load_config([DEFAULT_CONF_DIR / "default.yaml", extra])


def test_models_must_name_every_variant_and_control_must_be_allocated():
    with pytest.raises(ConfigError, match="models name variants"):
        ExperimentConfig(name="x", salt="s", allocation={"control": 0.5, "treatment": 0.5},
                         models={"control": "champion"})
    with pytest.raises(ConfigError, match="control variant 'control'"):
        ExperimentConfig(name="x", salt="s", allocation={"a": 0.5, "b": 0.5}, models={"a": 1, "b": 2})
