"""Bounded driver memory: the experiment analysis brings back per-variant rows, never per-user ones.

``spark.driver.maxResultSize`` is fixed when a session starts, so the step runs in a
subprocess (``analyze_under_result_limit.py``) with a 1 MiB limit. Its 20,000 exposed users'
outcomes (user_id, variant and eight doubles: ~93 bytes a user in Arrow, ~1.8 MiB) are
over that limit, as the same script checks by trying the old per-user ``toPandas``; the
moments are two rows a metric.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
USERS = 20_000
MAX_RESULT_SIZE = "1m"


@pytest.mark.slow
def test_experiment_analysis_runs_under_a_driver_result_limit_per_user_data_exceeds(tmp_path):
    run = subprocess.run([sys.executable, str(HERE / "analyze_under_result_limit.py"), str(tmp_path),
                          str(USERS), MAX_RESULT_SIZE], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["users_analysed"] == USERS
    # The limit bites: the per-user collect the step used to do is refused in the same session.
    assert "spark.driver.maxResultSize" in (outcome["per_user_collect_error"] or ""), outcome
