"""The daily Setlist DAG: one ``spark-submit jobs/setlist_job.py <step>`` task per step of the chain.

The steps, their order and their upstream steps come from Setlist's step registry
(``setlist.steps.chain``, the same chain ``setlist daily`` runs); retries, the schedule and the
spark-submit arguments from config (``airflow:`` and ``spark.master``). ``SETLIST_CONF`` (paths
separated by ``os.pathsep``) names the config files to load and pass on to every task; default
``conf/default.yaml``. Setlist is installed in Airflow's virtualenv without its dependencies
(``scripts/setup.sh``): the registry and the config need only pydantic and PyYAML.

Each task is templated on the logical date (``--ds {{ ds }}``) and passes Airflow's run id
and try number (``--run-id {{ run_id }}-try{{ ti.try_number }}``): every step replaces exactly
its own day of each table, so a retry, a cleared task or a backfill of old dates rewrites that
day and nothing else. The try number is part of the id because a cleared task must write
again (Delta skips a second write with the same transaction id).
No data passes through XCom.
"""
from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from setlist import steps
from setlist.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONF_FILES = [Path(p).absolute() for p in os.environ.get("SETLIST_CONF", "").split(os.pathsep) if p] or None
cfg = load_config(CONF_FILES)
flow = cfg.airflow
project = (REPO / flow.project_dir).resolve()
venv_bin = (project / flow.venv / "bin").resolve()


def submit_command(step: str) -> str:
    """The shell command of one task; ``{{ ds }}``, ``{{ run_id }}`` and the try number are
    templated by Airflow."""
    conf_args = [arg for path in (CONF_FILES or []) for arg in ("--conf", str(path))]
    args = ["spark-submit", "--master", cfg.spark.master, *flow.spark_submit_args,
            "jobs/setlist_job.py", step, *conf_args]
    return (f"cd {shlex.quote(str(project))} && PATH={shlex.quote(str(venv_bin))}:$PATH "
            + shlex.join(args) + " --ds {{ ds }} --run-id {{ run_id }}-try{{ ti.try_number }}")


with DAG(
    dag_id=flow.dag_id,
    schedule=flow.schedule,
    start_date=datetime.fromisoformat(flow.start_date),
    catchup=flow.catchup,
    max_active_runs=flow.max_active_runs,
    default_args={"retries": flow.retries, "retry_delay": timedelta(minutes=flow.retry_delay_minutes)},
    tags=["setlist"],
) as dag:
    chain = steps.chain(cfg)
    tasks = {step.name: BashOperator(task_id=step.name, bash_command=submit_command(step.name)) for step in chain}
    for step in chain:
        for upstream in step.after:
            tasks[upstream] >> tasks[step.name]
