"""The daily Setlist DAG: one ``spark-submit jobs/<job>.py`` task per configured step.

Everything comes from Setlist's config (``airflow:`` and ``spark.master``): the steps, their
order, retries, the schedule. ``SETLIST_CONF`` (paths separated by ``os.pathsep``) names the
config files to load and pass on to every job; default ``conf/default.yaml``.

Each task is templated on the logical date (``--ds {{ ds }}``) and passes Airflow's run id
and try number (``--run-id {{ run_id }}-try{{ ti.try_number }}``): every job replaces exactly
its own day of each table, so a retry, a cleared task or a backfill of old dates rewrites that
day and nothing else. The try number is part of the id because a cleared task must write
again (Delta skips a second write with the same transaction id).
No data passes through XCom.
"""
from __future__ import annotations

import os
import shlex
import sys
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from setlist.config import load_config  # noqa: E402

CONF_FILES = [Path(p).absolute() for p in os.environ.get("SETLIST_CONF", "").split(os.pathsep) if p] or None
cfg = load_config(CONF_FILES)
flow = cfg.airflow
project = (REPO / flow.project_dir).resolve()
venv_bin = (project / flow.venv / "bin").resolve()


def submit_command(job: str) -> str:
    """The shell command of one task; ``{{ ds }}``, ``{{ run_id }}`` and the try number are
    templated by Airflow."""
    conf_args = [arg for path in (CONF_FILES or []) for arg in ("--conf", str(path))]
    args = ["spark-submit", "--master", cfg.spark.master, *flow.spark_submit_args,
            f"jobs/{job}.py", *conf_args]
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
    tasks = {step.name: BashOperator(task_id=step.name, bash_command=submit_command(step.job))
             for step in flow.steps}
    for step in flow.steps:
        for upstream in step.after:
            tasks[upstream] >> tasks[step.name]
