"""The daily pipeline on a real Spark standalone cluster (master + worker on 127.0.0.1) equals local mode.

Setlist reaches the executors only as a built wheel (``--py-files``, shipped as .zip): the worker starts in a
temp folder with no PYTHONPATH, and executors run the virtualenv's interpreter with ``-S``,
so the editable install's ``.pth`` (the source tree) is never read there; a probe job checks
that no executor module or sys.path entry comes from the source tree.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from setlist import generator, lake
from setlist.pipeline import daily

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DAY = "2026-11-01"
SMALL = ["generator.n_users=40", "generator.n_artists=30", "generator.n_genres=4", "generator.files_per_day=2",
         "publish.top_n=5", "candidates.als.num_blocks=1", "candidates.als.rank=4", "candidates.als.max_iter=3"]
TABLES = ["listens", "interactions", "candidates", "ranked_recs"]
# ALS factors may differ in the last bits between runs; scores are compared to this tolerance.
SCORE_TOLERANCE = 1e-5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "PYSPARK", "VIRTUAL_ENV"))}
    import pyspark
    env.update({"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(Path(pyspark.__file__).parent),
                "SPARK_LOG_DIR": str(cwd), "PATH": f"{VENV_BIN}{os.pathsep}{env['PATH']}"})
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and one worker, started outside the source tree; stopped at the end."""
    root = tmp_path_factory.mktemp("cluster")
    port, ui_port, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(VENV_BIN / "spark-class")
    logs = []

    def start(args, name):
        log = open(root / f"{name}.log", "w")
        logs.append(log)
        return subprocess.Popen([spark_class, *args], cwd=root, env=spark_env(root), stdout=log, stderr=log)

    master = start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                    "--webui-port", str(ui_port)], "master")
    worker = start(["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                    "--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui),
                    "--work-dir", str(root / "work")], "worker")
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2))
                if state.get("aliveworkers", 0) >= 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or master.poll() is not None or worker.poll() is not None:
                raise RuntimeError(f"cluster did not start; see {root}/master.log, worker.log")
            time.sleep(1)
        yield f"spark://127.0.0.1:{port}", root
    finally:
        for process in (worker, master):
            process.terminate()
        for process in (worker, master):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3", "-m", "uv"]
    subprocess.run([*uv, "build", "--wheel", "--out-dir", str(out), str(REPO)], check=True,
                   capture_output=True, timeout=180)
    [built] = out.glob("setlist-*.whl")
    # --py-files puts .py/.zip/.egg on the executors' sys.path, not .whl: a wheel is a zip, ship it as one.
    return shutil.copy(built, built.with_suffix(".zip"))


def executor_python(folder: Path) -> Path:
    """The virtualenv's interpreter without site processing (so no editable .pth), its packages on PYTHONPATH."""
    site = sysconfig.get_paths()["purelib"]
    script = folder / "executor-python"
    script.write_text(f'#!/bin/sh\nPYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{site}" exec {sys.executable} -S "$@"\n')
    script.chmod(0o755)
    return script


def overrides(root: Path) -> list[str]:
    from conftest import TEST_OVERRIDES
    return TEST_OVERRIDES + SMALL + [
        f"paths.lake={root / 'lake'}", f"paths.raw={root.parent / 'raw'}",
        f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}", f"paths.mlflow_artifacts={root / 'mlart'}",
        f"paths.checkpoints={root / 'checkpoints'}", f"paths.reports={root / 'reports'}"]


def submit(master: str, wheel: Path, folder: Path, script: str, args: list[str]) -> subprocess.CompletedProcess:
    command = [str(VENV_BIN / "spark-submit"), "--master", master, "--py-files", str(wheel),
               "--conf", f"spark.pyspark.python={executor_python(folder)}",
               "--conf", f"spark.executorEnv.SETLIST_SOURCE_TREE={REPO / 'lib'}",
               "--conf", "spark.executor.memory=1g", script, *args]
    return subprocess.run(command, cwd=REPO, env=spark_env(folder), capture_output=True, text=True, timeout=400)


def sorted_frame(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, (list, dict, np.ndarray))).any():
            df[col] = df[col].map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str))
    keys = [c for c in df.columns if df[c].dtype.kind not in "f"]
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.timeout(600)
def test_daily_run_on_a_standalone_cluster_equals_local_mode(spark, cluster, wheel, tmp_path):
    from setlist.config import load_config
    master, cluster_root = cluster
    local_root, cluster_run = tmp_path / "local", tmp_path / "cluster"
    for folder in (local_root, cluster_run):
        folder.mkdir()
    local_cfg = load_config(overrides=overrides(local_root))
    world = generator.build_world(local_cfg.generator)
    lake.write_raw_day(generator.generate_day(local_cfg.generator, DAY, world), lake.raw_day_path(local_cfg, DAY),
                       "json", local_cfg.generator.files_per_day)
    daily.run(spark, local_cfg, DAY, "local")

    # From the wheel, the package cannot find conf/ next to itself: the job is given its config file.
    args = ["--ds", DAY, "--run-id", "cluster", "--conf", str(REPO / "conf" / "default.yaml")] + [a for o in overrides(cluster_run) for a in ("--set", o)]
    run = submit(master, wheel, cluster_run, "jobs/setlist_job.py", ["daily", *args])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    cluster_cfg = load_config(overrides=overrides(cluster_run))
    for table in TABLES:
        local = sorted_frame(DeltaTable(lake.table_path(local_cfg, table)).to_pandas())
        remote = sorted_frame(DeltaTable(lake.table_path(cluster_cfg, table)).to_pandas())
        assert len(local) > 0, table
        pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=SCORE_TOLERANCE, obj=table)

    probe_out = tmp_path / "probe.json"
    probe = submit(master, wheel, cluster_run, "tests/cluster_probe.py", [str(probe_out)])
    assert probe.returncode == 0, probe.stderr[-5000:]
    for found in json.loads(probe_out.read_text()):
        # Relative to the executor's folder in the worker's work dir (the shipped .zip lives there).
        setlist_file = str((Path(found["cwd"]) / found["setlist_file"]).resolve())
        assert setlist_file.startswith(str(cluster_root / "work")), found
        assert ".zip/setlist/" in found["setlist_file"], found
        assert found["modules_from_source"] == [] and found["path_from_source"] == [], found
        assert found["cwd"].startswith(str(cluster_root / "work")), found
