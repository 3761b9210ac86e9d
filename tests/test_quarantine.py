"""Quarantined rows stay readable by every Delta reader, whatever bytes arrived."""
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.sql import functions as F

from setlist import events, lake
from setlist.config import EventsConfig
from setlist.pipeline import ingest

from conftest import event

DS = "2026-11-03"


def garbage_line(rng: random.Random) -> bytes:
    """Random bytes without line terminators; 0xff never occurs in UTF-8, so it is always invalid."""
    body = bytes(b for b in rng.randbytes(60) if b not in b"\r\n")
    return body[:20] + b"\xff" + body[20:]


def delta_frame(cfg, table):
    return DeltaTable(lake.table_path(cfg, table)).to_pandas()


def test_binary_garbage_is_quarantined_with_its_exact_bytes(spark, make_cfg):
    cfg = make_cfg()
    rng = random.Random(11)
    good = [json.dumps(event(i)).encode() for i in range(6)]
    garbage = [garbage_line(rng) for _ in range(5)]
    # Looks like an event, but a field holds invalid UTF-8: must not reach listens.
    sneaky = json.dumps(event(50)).encode().replace(b'"u0"', b'"u\xc3\x28"')
    day = Path(lake.raw_day_path(cfg, DS))
    day.mkdir(parents=True)
    mixed = [good[0], garbage[0], good[1], garbage[1], sneaky, good[2], garbage[2], good[3], garbage[3],
             good[4], garbage[4], good[5]]
    (day / "part-00000.json").write_bytes(b"\n".join(mixed) + b"\n")
    # A file of nothing but random bytes, newlines and carriage returns included.
    (day / "part-00001.json").write_bytes(random.Random(12).randbytes(4096))

    result = ingest.run(spark, cfg, DS, "run-1")

    assert result.accepted + result.quarantined + result.duplicates == result.rows_read
    assert (result.accepted, result.duplicates) == (6, 0)
    listens = delta_frame(cfg, "listens")
    assert sorted(listens.event_id) == sorted(f"e{i}" for i in range(6))
    quarantined = delta_frame(cfg, "quarantined_events")  # failed with ArrowException before
    assert len(quarantined) == result.quarantined == result.rows_read - 6
    assert set(quarantined.reason_code) == {"MALFORMED_RECORD"}
    raw_bytes = set(quarantined.raw_bytes.map(bytes))
    assert set(garbage) | {sneaky} <= raw_bytes
    row = quarantined[quarantined.raw_bytes.map(bytes) == garbage[2]].iloc[0]
    assert row.raw_record == garbage[2].decode("utf-8", errors="replace")
    assert "not valid UTF-8" in row.message
    assert row.source_file.endswith("part-00000.json")
    assert not quarantined.event_id.isin([f"e{i}" for i in range(6)] + ["e50"]).any()


def test_valid_lines_keep_their_text_and_bytes(spark, make_cfg):
    cfg = make_cfg()
    line = json.dumps(event(1, surface="fridge", user_id="Zoë"), ensure_ascii=False)
    folder = Path(lake.raw_day_path(cfg, DS))
    folder.mkdir(parents=True)
    (folder / "part-00000.json").write_text(line + "\n", encoding="utf-8")
    ingest.run(spark, cfg, DS, "run-1")
    row = delta_frame(cfg, "quarantined_events").iloc[0]
    assert (row.raw_record, bytes(row.raw_bytes)) == (line, line.encode("utf-8"))
    assert row.reason_code == "UNKNOWN_SURFACE"


def test_a_lake_quarantined_before_raw_bytes_gains_the_column(spark, make_cfg):
    cfg = make_cfg()
    earlier = "2026-11-02"
    old_layout = [f for f in events.QUARANTINE_SCHEMA.fields if f.name != events.RAW_BYTES]
    old = spark.createDataFrame([("x1", "{", "MALFORMED_RECORD", ["MALFORMED_RECORD"], "m", "f.json", earlier)],
                                ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in old_layout))
    lake.write_partition(old, cfg, cfg.tables.quarantined_events, earlier, "old")
    folder = Path(lake.raw_day_path(cfg, DS))
    folder.mkdir(parents=True)
    (folder / "part-00000.json").write_bytes(json.dumps(event(1)).encode() + b"\n\xff\xfe\n")
    ingest.run(spark, cfg, DS, "run-1")
    quarantined = delta_frame(cfg, "quarantined_events").set_index("ds")
    assert quarantined.loc[earlier, "raw_bytes"] is None
    assert bytes(quarantined.loc[DS, "raw_bytes"]) == b"\xff\xfe"


def test_parquet_binary_field_that_is_not_utf8_is_malformed(spark, tmp_path):
    path = tmp_path / "events.parquet"
    frame = pa.Table.from_pylist([{**event(1), "user_id": b"u1"}, {**event(2), "user_id": b"u\xff"}])
    pq.write_table(frame, path)
    raw = lake.read_raw_events(spark, path, "parquet", events.RAW_STRING_SCHEMA, events.CORRUPT,
                               events.RAW_RECORD, events.SOURCE_FILE)
    validated = events.validate_events(events.normalise_columns(raw), EventsConfig(), DS)
    quarantined = events.quarantined_events(validated, EventsConfig(), DS)
    assert [r["event_id"] for r in events.accepted_listens(validated, DS).collect()] == ["e1"]
    assert quarantined.select("reason_code", F.is_valid_utf8("raw_record")).collect() == [("MALFORMED_RECORD", True)]
