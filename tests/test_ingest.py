"""The ingest step on files: counts invariant, reruns, and broken input that loses nothing."""
import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from setlist import lake
from setlist.errors import IngestError
from setlist.pipeline import ingest

from conftest import event, write_events, write_lines

DS = "2026-11-03"
EARLIER = "2026-11-02"


def day_folder(cfg, ds):
    return lake.raw_day_path(cfg, ds)


def table_rows(cfg, table, ds=None):
    frame = DeltaTable(lake.table_path(cfg, table)).to_pandas()
    return frame if ds is None else frame[frame.ds == ds]


def mixed_day(cfg):
    good = [event(i) for i in range(20)]
    lines = [json.dumps(r) for r in good]
    lines += [json.dumps(event(3)), json.dumps(event(4))]            # duplicates
    lines += [json.dumps(event(100, surface="fridge")),             # unknown surface
              json.dumps(event(101, ms_played="12s")),              # wrong type
              json.dumps(event(102, ts="2026-11-01T00:00:00Z")),    # outside the day
              json.dumps(event(103))[:30]]                          # truncated
    write_lines(day_folder(cfg, DS), lines[:12], "part-00000.json")
    write_lines(day_folder(cfg, DS), lines[12:], "part-00001.json")
    return len(lines)


def test_every_row_is_accepted_quarantined_or_a_counted_duplicate(spark, make_cfg):
    cfg = make_cfg()
    rows_in_files = mixed_day(cfg)
    result = ingest.run(spark, cfg, DS, "run-1")
    assert result.rows_read == rows_in_files
    assert (result.accepted, result.quarantined, result.duplicates) == (20, 4, 2)
    assert result.accepted + result.quarantined + result.duplicates == result.rows_read
    assert result.reasons == {"INVALID_TYPE": 1, "MALFORMED_RECORD": 1,
                              "TS_OUTSIDE_DAY": 1, "UNKNOWN_SURFACE": 1}
    assert len(table_rows(cfg, "listens")) == 20
    assert table_rows(cfg, "listens").event_id.is_unique
    quarantined = table_rows(cfg, "quarantined_events")
    assert sorted(quarantined.reason_code) == sorted(result.reasons)
    audit = table_rows(cfg, "ingest_audit")
    assert audit.iloc[0][["rows_read", "accepted", "quarantined", "duplicates"]].tolist() == [26, 20, 4, 2]


def test_reingesting_a_day_replaces_it_and_keeps_other_days(spark, make_cfg):
    cfg = make_cfg()
    write_events(day_folder(cfg, EARLIER), [event(i, ts="2026-11-02T10:00:00Z", event_id=f"old{i}")
                                            for i in range(5)])
    ingest.run(spark, cfg, EARLIER, "run-0")
    mixed_day(cfg)
    ingest.run(spark, cfg, DS, "run-1")
    first = table_rows(cfg, "listens").sort_values("event_id").reset_index(drop=True)
    version_before = DeltaTable(lake.table_path(cfg, "listens")).version()
    ingest.run(spark, cfg, DS, "run-2")
    second = table_rows(cfg, "listens").sort_values("event_id").reset_index(drop=True)
    assert first.equals(second)
    assert DeltaTable(lake.table_path(cfg, "listens")).version() == version_before + 1
    assert (second.ds == EARLIER).sum() == 5
    assert len(table_rows(cfg, "quarantined_events", DS)) == 4


def test_a_retry_with_the_same_run_id_is_not_applied_twice(spark, make_cfg):
    cfg = make_cfg()
    mixed_day(cfg)
    ingest.run(spark, cfg, DS, "run-1")
    version = DeltaTable(lake.table_path(cfg, "listens")).version()
    ingest.run(spark, cfg, DS, "run-1")
    assert DeltaTable(lake.table_path(cfg, "listens")).version() == version
    assert len(table_rows(cfg, "listens")) == 20


@pytest.mark.parametrize("breakage", ["missing", "empty_file", "no_files"])
def test_unreadable_input_is_a_clear_error_and_loses_no_earlier_day(spark, make_cfg, breakage):
    cfg = make_cfg()
    write_events(day_folder(cfg, EARLIER), [event(i, ts="2026-11-02T10:00:00Z") for i in range(5)])
    ingest.run(spark, cfg, EARLIER, "run-0")
    versions = {t: DeltaTable(lake.table_path(cfg, t)).version() for t in ("listens", "ingest_audit")}
    folder = day_folder(cfg, DS)
    if breakage == "empty_file":
        write_lines(folder, [])
        message = "holds no events"
    elif breakage == "no_files":
        Path(folder).mkdir(parents=True)
        message = "holds no data files"
    else:
        message = "does not exist"
    with pytest.raises(IngestError, match=message) as err:
        ingest.run(spark, cfg, DS, "run-1")
    assert DS in str(err.value) or str(folder) in str(err.value)
    for table, version in versions.items():
        assert DeltaTable(lake.table_path(cfg, table)).version() == version
    assert len(table_rows(cfg, "listens", EARLIER)) == 5


def test_a_file_of_only_wrong_types_is_quarantined_not_a_crash(spark, make_cfg):
    cfg = make_cfg()
    write_events(day_folder(cfg, DS), [event(i, ms_played={"nested": i}, track_duration_ms="long")
                                       for i in range(3)])
    result = ingest.run(spark, cfg, DS, "run-1")
    assert (result.accepted, result.quarantined) == (0, 3)
    assert result.reasons == {"INVALID_TYPE": 3}
