"""Backfill stops at a failing day and, once it is fixed, resumes there without redoing earlier days;
each day runs the whole registry chain, experiments and completion marker included."""
import shutil

import pytest
from deltalake import DeltaTable

from setlist import generator, lake, steps
from setlist.errors import IngestError
from setlist.pipeline import daily

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
SMALL = ["generator.n_users=40", "generator.n_artists=30", "generator.n_genres=4", "generator.files_per_day=1",
         "publish.top_n=5", "candidates.als.num_blocks=1", "candidates.als.rank=4", "candidates.als.max_iter=2"]


def days_written(cfg, table, since_version):
    """The ds of every commit to ``table`` after ``since_version`` (from the commit's userMetadata)."""
    history = DeltaTable(lake.table_path(cfg, table)).history()
    return sorted(h["userMetadata"].split("ds=")[1] for h in history if h["version"] > since_version)


def test_failure_mid_range_stops_there_and_rerun_resumes_from_that_day(spark, make_cfg, tmp_path):
    cfg = make_cfg(*SMALL)
    world = generator.build_world(cfg.generator)
    for ds in DAYS:
        lake.write_raw_day(generator.generate_day(cfg.generator, ds, world), lake.raw_day_path(cfg, ds),
                           "json", cfg.generator.files_per_day)
    missing = lake.raw_day_path(cfg, DAYS[1])
    shutil.move(missing, tmp_path / "held_back")

    with pytest.raises(IngestError, match=f"ds={DAYS[1]}"):
        daily.backfill(spark, cfg, DAYS[0], DAYS[-1], "first")
    assert daily.completed_days(spark, cfg) == {DAYS[0]}
    assert set(DeltaTable(lake.table_path(cfg, "ranked_recs")).to_pandas().ds) == {DAYS[0]}
    versions = {t: DeltaTable(lake.table_path(cfg, t)).version() for t in ("listens", "ranked_recs")}

    shutil.move(tmp_path / "held_back", missing)
    assert daily.backfill(spark, cfg, DAYS[0], DAYS[-1], "second") == DAYS[1:]
    assert daily.completed_days(spark, cfg) == set(DAYS)
    for table, version in versions.items():
        assert days_written(cfg, table, version) == DAYS[1:], table  # day 1 was not written again
    assert set(DeltaTable(lake.table_path(cfg, "ranked_recs")).to_pandas().ds) == set(DAYS)
    # Every step of the chain wrote each day exactly once, and the marker names the steps run.
    for step in steps.chain(cfg):
        for table in step.output_tables(cfg):
            if step.name == "train_ranker":  # three days are too few history to train: it skipped
                assert not lake.table_exists(spark, cfg, table)
                continue
            assert days_written(cfg, table, -1) == DAYS, table
    runs = DeltaTable(lake.table_path(cfg, "pipeline_runs")).to_pandas()
    assert set(runs.steps) == {",".join(s.name for s in steps.chain(cfg) if s.name != "mark_complete")}
