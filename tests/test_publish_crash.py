"""A publishing run killed with SIGKILL mid-write leaves the previous version readable."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deltalake import DeltaTable

HERE = Path(__file__).parent
DS = "2026-11-03"


def publish(lake_dir, run_id, model_version, sleep_s=0.0):
    return subprocess.Popen([sys.executable, str(HERE / "slow_publish.py"), str(lake_dir), DS, run_id,
                             model_version, str(sleep_s)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)


def data_files(table_dir):
    return {p for p in Path(table_dir).rglob("*.parquet")}


def test_sigkill_mid_write_leaves_previous_version_and_next_run_succeeds(tmp_path):
    table_dir = tmp_path / "lake" / "ranked_recs"
    first = publish(tmp_path / "lake", "run-1", "v1")
    assert first.wait(timeout=300) == 0
    before = DeltaTable(str(table_dir))
    version, content = before.version(), before.to_pandas().sort_values(["user_id", "rank"]).reset_index(drop=True)
    files_before = data_files(table_dir)

    second = publish(tmp_path / "lake", "run-2", "v2", sleep_s=0.5)
    assert second.stdout.readline().strip() == "WRITING"
    deadline = time.time() + 240
    # Kill once the new write has put data files down but before it could commit.
    while not (data_files(table_dir) - files_before) and time.time() < deadline:
        assert second.poll() is None, "the write finished before it could be killed"
        time.sleep(0.05)
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=60)
    assert data_files(table_dir) - files_before, "the kill came before the write started"

    after = DeltaTable(str(table_dir))
    assert after.version() == version
    survived = after.to_pandas().sort_values(["user_id", "rank"]).reset_index(drop=True)
    assert survived.equals(content)
    assert set(survived.model_version) == {"v1"}
    assert len(survived) == 100 * 40 // 1 and survived.groupby("user_id").size().eq(40).all()

    third = publish(tmp_path / "lake", "run-3", "v3")
    assert third.wait(timeout=300) == 0
    final = DeltaTable(str(table_dir))
    assert final.version() == version + 1
    published = final.to_pandas()
    assert set(published.model_version) == {"v3"} and len(published) == len(content)
