"""Deterministic, salted assignment of users to experiment variants.

A user's bucket is ``int(sha256(f"{salt}:{user_id}")[:HASH_HEX_DIGITS], 16) % bucket_count``;
buckets are cut into consecutive ranges in the order of the experiment's allocation.
The same rule is written twice, in Python (:func:`assign_variant`, for serving and tests)
and in Spark SQL (:func:`assign_users`, for batch), and both give identical buckets on any
machine or process. Different salts give independent assignments.
"""
from __future__ import annotations

import bisect
import hashlib
from itertools import accumulate

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from setlist.config import ExperimentConfig

# Leading hex digits of the sha256 digest read as the bucket integer: 15 digits = 60 bits,
# which Spark's conv() turns into a non-negative signed 64-bit long without overflow.
# Changing it reshuffles every user of every experiment.
HASH_HEX_DIGITS = 15
ASSIGNMENT_COLUMNS = ["experiment", "user_id", "bucket", "variant"]


def hash_key(salt: str, user_id: object) -> str:
    """The string hashed for a user: ``"{salt}:{user_id}"`` (ids as their decimal/string form)."""
    return f"{salt}:{user_id}"


def bucket_of(user_id: object, salt: str, bucket_count: int) -> int:
    """The user's bucket in ``[0, bucket_count)``; stable across runs, machines and processes."""
    digest = hashlib.sha256(hash_key(salt, user_id).encode("utf-8")).hexdigest()
    return int(digest[:HASH_HEX_DIGITS], 16) % bucket_count


def bucket_bounds(experiment: ExperimentConfig) -> list[tuple[str, int]]:
    """(variant, exclusive upper bucket) in allocation order; the last bound is bucket_count."""
    cumulative = list(accumulate(experiment.allocation.values()))
    uppers = [round(share * experiment.bucket_count) for share in cumulative]
    uppers[-1] = experiment.bucket_count
    return list(zip(experiment.allocation, uppers))


def variant_of_bucket(bucket: int, experiment: ExperimentConfig) -> str:
    """The variant owning ``bucket`` under the experiment's allocation."""
    bounds = bucket_bounds(experiment)
    index = bisect.bisect_right([upper for _, upper in bounds], bucket)
    return bounds[index][0]


def assign_variant(user_id: object, experiment: ExperimentConfig) -> str:
    """The variant ``user_id`` sees in ``experiment`` (pure Python, same as :func:`assign_users`)."""
    return variant_of_bucket(bucket_of(user_id, experiment.salt, experiment.bucket_count), experiment)


def bucket_col(user_id: Column, salt: str, bucket_count: int) -> Column:
    """Spark twin of :func:`bucket_of`: sha2 -> leading hex digits -> long -> modulo."""
    key = F.concat(F.lit(f"{salt}:"), user_id.cast("string"))
    leading = F.substring(F.sha2(key, 256), 1, HASH_HEX_DIGITS)
    return F.pmod(F.conv(leading, 16, 10).cast("long"), F.lit(bucket_count)).cast("int")


def variant_col(bucket: Column, experiment: ExperimentConfig) -> Column:
    """Spark twin of :func:`variant_of_bucket`."""
    bounds = bucket_bounds(experiment)
    rule = None
    for variant, upper in bounds[:-1]:
        condition = bucket < F.lit(upper)
        rule = F.when(condition, F.lit(variant)) if rule is None else rule.when(condition, F.lit(variant))
    last = F.lit(bounds[-1][0])
    return last if rule is None else rule.otherwise(last)


def assign_users(users: DataFrame, experiment: ExperimentConfig) -> DataFrame:
    """``users`` (a ``user_id`` column, string or integer) -> one row per user:
    (experiment, user_id, bucket, variant), identical to :func:`assign_variant`.

    Duplicate user ids in the input give duplicate rows; pass distinct users.
    """
    bucket = bucket_col(F.col("user_id"), experiment.salt, experiment.bucket_count)
    return (users
            .select("user_id", bucket.alias("bucket"))
            .select(F.lit(experiment.name).alias("experiment"), "user_id", "bucket",
                    variant_col(F.col("bucket"), experiment).alias("variant")))
