"""Listening-event schema, validation and quarantine (pure transforms).

Raw events arrive as strings (JSON lines, CSV or Parquet, see ``lake.read_raw_events``).
``validate_events`` types every field and attaches the list of rule violations;
``accepted_listens`` and ``quarantined_events`` split the result, and
``deduplicate_listens`` drops repeated event ids. Invariant (checked by the
ingest step): accepted + quarantined + duplicates = rows read.
"""
from __future__ import annotations

import datetime as dt
import functools
import operator

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from setlist.config import EventsConfig

RAW_RECORD = "raw_record"
RAW_BYTES = "raw_bytes"
SOURCE_FILE = "source_file"
CORRUPT = "_corrupt_record"
REASONS = "_reasons"

# Field name -> Spark type after validation; all are required but the flags.
EVENT_FIELDS: dict[str, T.DataType] = {
    "event_id": T.StringType(),
    "user_id": T.StringType(),
    "track_id": T.StringType(),
    "artist_id": T.StringType(),
    "ts": T.TimestampType(),
    "ms_played": T.LongType(),
    "track_duration_ms": T.LongType(),
    "reason_start": T.StringType(),
    "reason_end": T.StringType(),
    "surface": T.StringType(),
    "platform": T.StringType(),
    "shuffle": T.BooleanType(),
    "skipped": T.BooleanType(),
    "saved": T.BooleanType(),
}
REQUIRED_FIELDS = ["event_id", "user_id", "track_id", "artist_id", "ts", "ms_played",
                   "track_duration_ms", "reason_end", "surface"]
# Optional flags default to false; optional strings stay null.
OPTIONAL_DEFAULTS = {"shuffle": False, "skipped": False, "saved": False}

RAW_STRING_SCHEMA = T.StructType([T.StructField(name, T.StringType()) for name in EVENT_FIELDS])

LISTENS_SCHEMA = T.StructType(
    [T.StructField(name, dtype) for name, dtype in EVENT_FIELDS.items()]
    + [T.StructField("ds", T.StringType())])

# Why ``raw_bytes`` beside ``raw_record``: Spark's text source does not check UTF-8, so a line of
# binary garbage reaches the string column as is, and Arrow-based Delta readers (``deltalake``,
# pandas) refuse the whole table. ``raw_record`` is therefore always valid UTF-8 (the line itself
# when it was valid, invalid sequences replaced by U+FFFD otherwise) and ``raw_bytes`` keeps the
# exact bytes for anyone who must replay or inspect them. An escape inside the string was the
# other option, but any reversible one also rewrites valid lines (the escape character itself).
QUARANTINE_SCHEMA = T.StructType([
    T.StructField("event_id", T.StringType()),
    T.StructField(RAW_RECORD, T.StringType()),
    T.StructField(RAW_BYTES, T.BinaryType()),
    T.StructField("reason_code", T.StringType()),
    T.StructField("reasons", T.ArrayType(T.StringType())),
    T.StructField("message", T.StringType()),
    T.StructField(SOURCE_FILE, T.StringType()),
    T.StructField("ds", T.StringType()),
])

# Reason codes, in the order a row's first (primary) reason is chosen.
MALFORMED_RECORD = "MALFORMED_RECORD"
MISSING_FIELD = "MISSING_FIELD"
INVALID_TYPE = "INVALID_TYPE"
UNKNOWN_REASON_END = "UNKNOWN_REASON_END"
UNKNOWN_SURFACE = "UNKNOWN_SURFACE"
NEGATIVE_MS_PLAYED = "NEGATIVE_MS_PLAYED"
INVALID_DURATION = "INVALID_DURATION"
MS_PLAYED_EXCEEDS_DURATION = "MS_PLAYED_EXCEEDS_DURATION"
TS_IN_FUTURE = "TS_IN_FUTURE"
TS_OUTSIDE_DAY = "TS_OUTSIDE_DAY"

# ``_corrupt_record`` of a record that is not valid UTF-8 (JSON text must be UTF-8, RFC 8259).
NOT_UTF8 = "<not valid UTF-8>"


def _valid_utf8(*columns: str | Column) -> Column:
    """True when every one of the string columns is null or valid UTF-8."""
    return functools.reduce(operator.and_, [F.coalesce(F.is_valid_utf8(c), F.lit(True)) for c in columns])


def parse_json_lines(lines: DataFrame) -> DataFrame:
    """(raw_record, source_file) text lines -> one string column per event field.

    A line that is not a JSON object (truncated, blank, an array, not valid UTF-8) keeps its
    text in ``_corrupt_record``; nothing is dropped. A line that is not valid UTF-8 is not
    parsed at all, so no field of it can carry invalid bytes into ``listens``.
    """
    schema = T.StructType(RAW_STRING_SCHEMA.fields + [T.StructField(CORRUPT, T.StringType())])
    utf8 = _valid_utf8(RAW_RECORD)
    parsed = F.from_json(F.when(utf8, F.col(RAW_RECORD)), schema,
                         {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    blank = F.trim(F.col(RAW_RECORD)) == ""
    # explode(array(...)) yields the same single row, but as a generator it stops the
    # optimizer from inlining from_json into every later reference (a filter on the
    # validation result would otherwise parse each line once per field it reads).
    return (lines
            .select(F.explode(F.array(parsed)).alias("_parsed"), RAW_RECORD, SOURCE_FILE)
            .select(*[F.col(f"_parsed.{name}").alias(name) for name in EVENT_FIELDS],
                    F.when(~utf8, F.lit(NOT_UTF8))
                     .when(blank, F.lit("<blank line>"))
                     .otherwise(F.col(f"_parsed.{CORRUPT}")).alias(CORRUPT),
                    RAW_RECORD, SOURCE_FILE))


def normalise_columns(raw: DataFrame) -> DataFrame:
    """Any raw frame (CSV/Parquet reader output) -> the string layout of ``parse_json_lines``.

    Columns the file lacks become null strings (and are then reported missing);
    typed Parquet columns are cast to strings so one validation serves all formats.
    A row with a field that is not valid UTF-8 (a Parquet binary column) is malformed,
    its fields nulled, as in ``parse_json_lines``.
    """
    fields = {name: (F.col(name).cast("string") if name in raw.columns else F.lit(None).cast("string"))
              for name in EVENT_FIELDS}
    utf8 = _valid_utf8(*fields.values())
    corrupt = F.col(CORRUPT) if CORRUPT in raw.columns else F.lit(None).cast("string")
    data_columns = [c for c in raw.columns if c not in (CORRUPT, SOURCE_FILE)]
    record = F.coalesce(corrupt, F.to_json(F.struct(*data_columns)))
    source = F.col(SOURCE_FILE) if SOURCE_FILE in raw.columns else F.input_file_name()
    return raw.select(*[F.when(utf8, column).alias(name) for name, column in fields.items()],
                      F.when(~utf8, F.lit(NOT_UTF8)).otherwise(corrupt).alias(CORRUPT),
                      record.alias(RAW_RECORD), source.alias(SOURCE_FILE))


def day_bounds(ds: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.strptime(ds, "%Y-%m-%d")
    return start, start + dt.timedelta(days=1)


def _typed(name: str) -> Column:
    return F.col(name).try_cast(EVENT_FIELDS[name])


def _is_missing(name: str) -> Column:
    return F.col(name).isNull() | (F.trim(F.col(name)) == "")


def _rules(cfg: EventsConfig, ds: str) -> list[tuple[str, Column, Column]]:
    """(code, violated-condition, message) per rule, over the raw string columns."""
    day_start, day_end = day_bounds(ds)
    observed_until = day_end + dt.timedelta(hours=cfg.late_arrival_hours)
    ts, ms_played, duration = _typed("ts"), _typed("ms_played"), _typed("track_duration_ms")
    malformed = F.col(CORRUPT).isNotNull()
    rules = [(MALFORMED_RECORD, malformed,
              F.when(F.col(CORRUPT) == NOT_UTF8, F.lit(f"record is not valid UTF-8 (its bytes are in {RAW_BYTES})"))
               .otherwise(F.lit("record is not a valid event object")))]
    for name in REQUIRED_FIELDS:
        rules.append((MISSING_FIELD, ~malformed & _is_missing(name),
                      F.lit(f"required field '{name}' is missing or empty")))
    for name, dtype in EVENT_FIELDS.items():
        if dtype != T.StringType():
            rules.append((INVALID_TYPE, ~_is_missing(name) & _typed(name).isNull(), F.concat(
                F.lit(f"field '{name}' is not a {dtype.simpleString()}: '"), F.col(name), F.lit("'"))))
    rules += [
        (UNKNOWN_REASON_END, ~_is_missing("reason_end") & ~F.col("reason_end").isin(cfg.reason_end_values),
         F.concat(F.lit("reason_end '"), F.col("reason_end"), F.lit("' is not a known value"))),
        (UNKNOWN_SURFACE, ~_is_missing("surface") & ~F.col("surface").isin(cfg.surfaces),
         F.concat(F.lit("surface '"), F.col("surface"), F.lit("' is not a known surface"))),
        (NEGATIVE_MS_PLAYED, ms_played < 0,
         F.concat(F.lit("ms_played is negative: "), ms_played.cast("string"))),
        (INVALID_DURATION, duration <= 0,
         F.concat(F.lit("track_duration_ms must be positive: "), duration.cast("string"))),
        (MS_PLAYED_EXCEEDS_DURATION, ms_played > duration + F.lit(cfg.ms_played_tolerance_ms),
         F.concat(F.lit("ms_played "), ms_played.cast("string"),
                  F.lit(" exceeds track_duration_ms "), duration.cast("string"),
                  F.lit(f" by more than {cfg.ms_played_tolerance_ms} ms"))),
        (TS_IN_FUTURE, ts >= F.lit(observed_until),
         F.concat(F.lit("ts "), ts.cast("string"),
                  F.lit(f" is later than the batch could be observed ({observed_until} UTC)"))),
        (TS_OUTSIDE_DAY, (ts < F.lit(observed_until)) & ((ts < F.lit(day_start)) | (ts >= F.lit(day_end))),
         F.concat(F.lit("ts "), ts.cast("string"), F.lit(f" is outside the ingested day {ds}"))),
    ]
    return rules


def validate_events(raw: DataFrame, cfg: EventsConfig, ds: str) -> DataFrame:
    """The raw string columns + ``_reasons``: the codes of every violated rule, in rule order
    (empty when valid); ``raw_record`` is kept for rejected rows only (null on valid ones).
    Typing and messages are left to the two outputs below, so a valid row pays only for the checks.
    """
    codes = F.filter(F.array(*[F.when(violated, F.lit(code)) for code, violated, _ in _rules(cfg, ds)]),
                     lambda c: c.isNotNull())
    checked = F.struct(*EVENT_FIELDS, CORRUPT, RAW_RECORD, SOURCE_FILE, codes.alias(REASONS))
    # Only a rejected row needs its raw text (quarantine keeps it): nulling it on accepted rows
    # keeps the ingest step's cache of a day small.
    return (raw.select(F.explode(F.array(checked)).alias("_checked")).select("_checked.*")
            .withColumn(RAW_RECORD, F.when(F.size(REASONS) > 0, F.col(RAW_RECORD))))


def accepted_listens(validated: DataFrame, ds: str) -> DataFrame:
    """Rows with no violation, typed, in the ``listens`` layout (may still hold duplicates)."""
    typed = []
    for name in EVENT_FIELDS:
        column = _typed(name)
        if name in OPTIONAL_DEFAULTS:
            column = F.coalesce(column, F.lit(OPTIONAL_DEFAULTS[name]))
        typed.append(column.alias(name))
    return validated.where(F.size(REASONS) == 0).select(*typed, F.lit(ds).alias("ds"))


def quarantined_events(validated: DataFrame, cfg: EventsConfig, ds: str) -> DataFrame:
    """Rows with at least one violation, in ``QUARANTINE_SCHEMA``: the raw record as valid UTF-8
    text and as its exact bytes (``raw_bytes``), the primary reason code, every code, a human
    message naming each problem, and the source file."""
    messages = F.filter(F.array(*[F.when(violated, F.concat(F.lit(code + ": "), message))
                                  for code, violated, message in _rules(cfg, ds)]),
                        lambda m: m.isNotNull())
    return (validated.where(F.size(REASONS) > 0)
            .select("event_id",
                    F.make_valid_utf8(RAW_RECORD).alias(RAW_RECORD),
                    # A string's bytes as read: the line itself, invalid sequences included.
                    F.col(RAW_RECORD).cast("binary").alias(RAW_BYTES),
                    F.col(REASONS)[0].alias("reason_code"),
                    F.col(REASONS).alias("reasons"),
                    F.array_join(messages, "; ").alias("message"),
                    SOURCE_FILE,
                    F.lit(ds).alias("ds")))


def deduplicate_listens(listens: DataFrame) -> DataFrame:
    """One row per event_id: the earliest copy (ties broken by the whole row), deterministic.

    A window over event_id costs one shuffle, measured no slower than an
    aggregate and far cheaper than finding the repeated ids first (which reads
    the input twice).
    """
    order = Window.partitionBy("event_id").orderBy(
        "ts", "user_id", "track_id", "ms_played", "reason_end", "surface")
    return (listens.withColumn("_copy", F.row_number().over(order))
            .where(F.col("_copy") == 1).drop("_copy"))
