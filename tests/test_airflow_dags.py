"""The Airflow DAGs, checked in Airflow's own virtualenv (.venv-airflow, made by scripts/setup.sh).

Airflow's pins fight ours, so these tests run Airflow in a subprocess: a DagBag load of
airflow_dags/ (tests/airflow_checks.py), and ``airflow dags test`` of one day on a tiny
generated day, whose tasks spark-submit jobs/setlist_job.py <step> against a temp lake.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deltalake import DeltaTable

from setlist import generator, lake, steps
from setlist.config import load_config

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"
DAY = "2026-11-01"
EXPECTED_EDGES = [["assign_experiments", "publish"], ["candidates", "train_ranker"], ["ingest", "assign_experiments"],
                  ["ingest", "interactions"], ["interactions", "candidates"], ["publish", "analyze_experiment"],
                  ["train_ranker", "publish"], ["candidates", "publish"], ["analyze_experiment", "mark_complete"],
                  ["ingest", "next_tracks"], ["next_tracks", "mark_complete"],
                  ["ingest", "train_sequential"], ["train_sequential", "candidates"]]


def airflow_env(home: Path, conf: list[Path]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYSPARK", "SPARK", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "airflow_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "SETLIST_CONF": os.pathsep.join(str(p) for p in conf),
        "PATH": f"{AIRFLOW_PYTHON.parent}{os.pathsep}{os.environ['PATH']}",
    })
    return env


def dag_shape(home: Path, conf: list[Path]) -> dict:
    out = subprocess.run([str(AIRFLOW_PYTHON), str(REPO / "tests" / "airflow_checks.py"), str(REPO / "airflow_dags")],
                         env=airflow_env(home, conf), capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def topological_orders_allow(chain: list[str], edges: list[list[str]]) -> bool:
    """Whether running ``chain`` one step after another respects every edge of the DAG."""
    position = {name: i for i, name in enumerate(chain)}
    return all(position[up] < position[down] for up, down in edges)


def test_daily_dag_runs_the_registry_chain(tmp_path):
    shape = dag_shape(tmp_path, [REPO / "conf" / "default.yaml"])
    assert shape["import_errors"] == {}
    dag = shape["dags"]["setlist_daily"]
    chain = steps.chain(load_config())
    assert dag["tasks"] == sorted(step.name for step in chain)
    assert dag["edges"] == sorted([up, step.name] for step in chain for up in step.after)
    assert sorted(EXPECTED_EDGES) == dag["edges"]
    # daily and backfill run the chain in list order: an order the DAG's edges allow.
    assert topological_orders_allow([step.name for step in chain], dag["edges"])
    assert set(dag["retries"].values()) == {2} and dag["max_active_runs"] == 1
    for task, command in dag["commands"].items():
        assert f"spark-submit --master 'local[2]' jobs/setlist_job.py {task} --conf " in command
        assert command.endswith("--ds {{ ds }} --run-id {{ run_id }}-try{{ ti.try_number }}")


def test_without_train_in_daily_the_dag_drops_train_ranker_like_daily(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"ranking": {"train_in_daily": False}, "airflow": {"retries": 0}}))
    conf = [REPO / "conf" / "default.yaml", extra]
    dag = dag_shape(tmp_path, conf)["dags"]["setlist_daily"]
    chain = steps.chain(load_config(conf))
    assert "train_ranker" not in dag["tasks"] and dag["tasks"] == sorted(step.name for step in chain)
    assert ["candidates", "publish"] in dag["edges"] and ["assign_experiments", "publish"] in dag["edges"]
    assert topological_orders_allow([step.name for step in chain], dag["edges"])
    assert set(dag["retries"].values()) == {0}


# Eight spark-submits, one JVM each: minutes, and many more on a busy machine.
@pytest.mark.timeout(1200)
def test_one_dag_run_executes_every_step_on_a_tiny_generated_day(tmp_path):
    settings = {
        "paths": {"lake": str(tmp_path / "lake"), "raw": str(tmp_path / "raw"),
                  "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                  "mlflow_artifacts": str(tmp_path / "mlartifacts"), "checkpoints": str(tmp_path / "checkpoints"),
                  "reports": str(tmp_path / "reports")},
        "spark": {"shuffle_partitions": 1, "driver_memory": "1g", "log_level": "ERROR",
                  "conf": {"spark.default.parallelism": "2", "spark.databricks.delta.snapshotPartitions": "1"}},
        "generator": {"n_users": 40, "n_artists": 30, "n_genres": 4, "files_per_day": 1},
        "publish": {"top_n": 5},
        "candidates": {"als": {"num_blocks": 1, "rank": 4, "max_iter": 2},
                       "sequential": {"dim": 8, "heads": 1, "layers": 1, "epochs": 2, "shards": 1, "threads": 1}},
        "experiments": {"pre_days": 1, "experiments": [
            {"name": "ranker_aa", "salt": "dag_test", "start_date": DAY,
             "allocation": {"control": 0.5, "treatment": 0.5},
             "models": {"control": "champion", "treatment": "champion"}}]},
        "airflow": {"retries": 0},
    }
    conf = [REPO / "conf" / "default.yaml", tmp_path / "tiny.yaml"]
    conf[1].write_text(yaml.safe_dump(settings))
    cfg = load_config(conf)
    world = generator.build_world(cfg.generator)
    lake.write_raw_day(generator.generate_day(cfg.generator, DAY, world), lake.raw_day_path(cfg, DAY), "json", 1)

    env = airflow_env(tmp_path / "airflow", conf)
    airflow = str(AIRFLOW_PYTHON.parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=180, check=True)
    run = subprocess.run([airflow, "dags", "test", "setlist_daily", DAY], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=1080)
    print(run.stdout[-4000:], run.stderr[-4000:], file=sys.stderr)
    assert run.returncode == 0

    for table in ("listens", "sequences", "interactions", "candidates", "ranked_recs", "experiment_assignments",
                  "experiment_results", "pipeline_runs"):
        written = DeltaTable(lake.table_path(cfg, table)).to_pandas()
        assert set(written.ds) == {DAY}, table
        assert len(written), table
        metadata = DeltaTable(lake.table_path(cfg, table)).history(1)[0]["userMetadata"]
        assert metadata.startswith("run_id=manual__"), (table, metadata)  # Airflow's run id
    recs = DeltaTable(lake.table_path(cfg, "ranked_recs")).to_pandas()
    assert recs.groupby("user_id")["rank"].max().max() <= 5
    results = DeltaTable(lake.table_path(cfg, "experiment_results")).to_pandas()
    assert set(results.metric) == set(cfg.experiments.metrics) and not results.srm_detected.any()
    assert (tmp_path / "reports" / "experiments" / f"ds={DAY}" / "ranker_aa.md").exists()
