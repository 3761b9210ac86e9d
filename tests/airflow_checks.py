"""Run inside the Airflow virtualenv (.venv-airflow): load the DAG folder, print its shape as JSON.

tests/test_airflow_dags.py calls this through a subprocess, since Airflow's pins fight ours.
"""
import json
import sys

from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dags": {dag_id: {
        "tasks": sorted(dag.task_ids),
        "edges": sorted([t.task_id, d] for t in dag.tasks for d in t.downstream_task_ids),
        "commands": {t.task_id: t.bash_command for t in dag.tasks},
        "retries": {t.task_id: t.retries for t in dag.tasks},
        "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
    } for dag_id, dag in bag.dags.items()},
}))
