"""Validation rules, one behaviour per test, on tiny frames of raw string events."""
import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from setlist import events
from setlist.config import EventsConfig

from conftest import event

DS = "2026-11-03"
CFG = EventsConfig()


def raw_frame(spark, lines):
    rows = [(line, "part-0.json") for line in lines]
    return events.parse_json_lines(spark.createDataFrame(rows, f"{events.RAW_RECORD} string, "
                                                         f"{events.SOURCE_FILE} string"))


def codes(spark, records, cfg=CFG):
    """event id -> list of reason codes (empty list when valid)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    validated = events.validate_events(raw_frame(spark, lines), cfg, DS)
    return validated.select(F.coalesce("event_id", F.col(events.RAW_RECORD)).alias("event_id"),
                            F.col(events.REASONS).alias("codes"))


def check(actual, wanted):
    assert_df_equality(actual, wanted, ignore_nullable=True, ignore_row_order=True)


def expected(spark, pairs):
    return spark.createDataFrame(pairs, "event_id string, codes array<string>")


def test_valid_event_has_no_reason(spark):
    check(codes(spark, [event(1)]), expected(spark, [("e1", [])]))


def test_truncated_json_is_malformed(spark):
    line = json.dumps(event(1))[:40]
    check(codes(spark, [line]), expected(spark, [(line, ["MALFORMED_RECORD"])]))


def test_blank_line_and_array_are_malformed(spark):
    check(codes(spark, ["", "[1, 2]"]),
                       expected(spark, [("", ["MALFORMED_RECORD"]), ("[1, 2]", ["MALFORMED_RECORD"])]))


def test_missing_required_field(spark):
    record = event(1)
    del record["user_id"]
    empty_track = event(2, track_id="")
    check(codes(spark, [record, empty_track]),
                       expected(spark, [("e1", ["MISSING_FIELD"]), ("e2", ["MISSING_FIELD"])]))


def test_missing_optional_flag_defaults_to_false(spark):
    record = event(1)
    del record["saved"]
    validated = events.validate_events(raw_frame(spark, [json.dumps(record)]), CFG, DS)
    assert events.accepted_listens(validated, DS).select("event_id", "saved").first() == ("e1", False)


def test_wrong_type_is_invalid_type(spark):
    check(codes(spark, [event(1, ms_played="lots"), event(2, ts="yesterday"),
                                     event(3, saved="maybe")]),
                       expected(spark, [("e1", ["INVALID_TYPE"]), ("e2", ["INVALID_TYPE"]),
                                        ("e3", ["INVALID_TYPE"])]))


def test_unknown_reason_end_and_surface(spark):
    check(codes(spark, [event(1, reason_end="teleported"), event(2, surface="fridge")]),
                       expected(spark, [("e1", ["UNKNOWN_REASON_END"]), ("e2", ["UNKNOWN_SURFACE"])]))


def test_negative_ms_played(spark):
    check(codes(spark, [event(1, ms_played=-5)]),
                       expected(spark, [("e1", ["NEGATIVE_MS_PLAYED"])]))


def test_ms_played_longer_than_track_beyond_tolerance(spark):
    within = event(1, ms_played=200000 + CFG.ms_played_tolerance_ms)
    beyond = event(2, ms_played=200000 + CFG.ms_played_tolerance_ms + 1)
    check(codes(spark, [within, beyond]),
                       expected(spark, [("e1", []), ("e2", ["MS_PLAYED_EXCEEDS_DURATION"])]))


def test_non_positive_duration(spark):
    check(codes(spark, [event(1, track_duration_ms=0, ms_played=0)]),
                       expected(spark, [("e1", ["INVALID_DURATION"])]))


def test_timestamp_outside_the_day(spark):
    check(codes(spark, [event(1, ts="2026-11-02T23:59:59Z"), event(2, ts="2026-11-04T00:00:00Z"),
                                     event(3, ts="2026-11-03T23:59:59.999Z")]),
                       expected(spark, [("e1", ["TS_OUTSIDE_DAY"]), ("e2", ["TS_OUTSIDE_DAY"]),
                                        ("e3", [])]))


def test_timestamp_in_the_future(spark):
    # Day D is observed until D + 1 day + late_arrival_hours; later stamps cannot be real yet.
    check(codes(spark, [event(1, ts="2026-11-05T00:00:00Z"), event(2, ts="2030-01-01T00:00:00Z")]),
                       expected(spark, [("e1", ["TS_IN_FUTURE"]), ("e2", ["TS_IN_FUTURE"])]))


def test_every_violation_is_listed_primary_first(spark):
    record = event(1, reason_end="teleported", surface="fridge", ms_played=-1)
    check(codes(spark, [record]),
                       expected(spark, [("e1", ["UNKNOWN_REASON_END", "UNKNOWN_SURFACE", "NEGATIVE_MS_PLAYED"])]))


def test_quarantine_keeps_raw_record_code_and_message(spark):
    line = json.dumps(event(1, surface="fridge"))
    validated = events.validate_events(raw_frame(spark, [line, json.dumps(event(2))]), CFG, DS)
    row = events.quarantined_events(validated, CFG, DS).collect()
    assert len(row) == 1
    assert row[0]["raw_record"] == line
    assert row[0]["reason_code"] == "UNKNOWN_SURFACE"
    assert "surface 'fridge' is not a known surface" in row[0]["message"]
    assert row[0]["source_file"] == "part-0.json"
    assert events.accepted_listens(validated, DS).select("event_id").collect()[0][0] == "e2"


def test_duplicate_event_ids_keep_the_earliest_copy(spark):
    lines = [json.dumps(event(1, ts="2026-11-03T10:00:00Z")), json.dumps(event(1, ts="2026-11-03T09:00:00Z")),
             json.dumps(event(2))]
    validated = events.validate_events(raw_frame(spark, lines), CFG, DS)
    deduped = events.deduplicate_listens(events.accepted_listens(validated, DS))
    actual = deduped.select("event_id", F.date_format("ts", "HH:mm").alias("at"))
    assert_df_equality(actual, spark.createDataFrame([("e1", "09:00"), ("e2", "02:02")], "event_id string, at string"),
                       ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_normalise_to_the_same_validation(spark, tmp_path, fmt):
    import pandas as pd
    from setlist import lake
    frame = pd.DataFrame([event(1), event(2, surface="fridge")])
    path = tmp_path / f"events.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    raw = lake.read_raw_events(spark, path, fmt, events.RAW_STRING_SCHEMA, events.CORRUPT,
                               events.RAW_RECORD, events.SOURCE_FILE)
    validated = events.validate_events(events.normalise_columns(raw), CFG, DS)
    result = {r["event_id"]: r["n"] for r in validated.select("event_id", F.size(events.REASONS).alias("n")).collect()}
    assert result == {"e1": 0, "e2": 1}
