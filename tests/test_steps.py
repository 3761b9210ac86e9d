"""The step registry: one chain that the step runner, daily, backfill and the command are built from.

The DAG's side (the same tasks and edges) is checked in tests/test_airflow_dags.py, in Airflow's
virtualenv.
"""
import subprocess
import sys
from pathlib import Path

import pytest
from delta.exceptions import ConcurrentAppendException

from setlist import cli, steps
from setlist.config import TablesConfig, load_config
from setlist.errors import ConfigError, IngestError
from setlist.pipeline import daily, train_ranker

CHAIN = ["ingest", "interactions", "train_sequential", "candidates", "next_tracks", "assign_experiments", "train_ranker", "publish",
         "analyze_experiment", "mark_complete"]
DAY = "2026-11-07"
REPO = Path(__file__).resolve().parents[1]


def test_the_chain_runs_every_step_in_the_documented_order():
    assert [step.name for step in steps.chain(load_config())] == CHAIN


def test_every_step_waits_only_for_earlier_steps_so_the_list_order_is_a_valid_dag_order():
    for position, step in enumerate(steps.STEPS):
        earlier = {s.name for s in steps.STEPS[:position]}
        assert set(step.after) <= earlier, step.name
        assert step.after or position == 0, step.name
    # mark_complete is last and every other step is upstream of it.
    ancestors, frontier = set(), ["mark_complete"]
    while frontier:
        for up in steps.BY_NAME[frontier.pop()].after:
            ancestors.add(up)
            frontier.append(up)
    assert ancestors == set(CHAIN[:-1]) | {"train_generative"}  # off by default, upstream when on


def test_the_generative_source_brings_its_training_step_into_the_chain():
    cfg = load_config(overrides=["candidates.sources=[als,popularity,generative]"])
    names = [step.name for step in steps.chain(cfg)]
    assert "train_generative" in names and "train_sequential" not in names
    assert names.index("train_generative") < names.index("candidates")
    assert "train_generative" in steps.BY_NAME["candidates"].after
    off = load_config(overrides=["candidates.sources=[als,generative]", "candidates.generative.train_in_daily=false"])
    assert "train_generative" not in [step.name for step in steps.chain(off)]


def test_a_disabled_step_is_replaced_by_its_upstream_only_where_no_other_path_implies_it():
    # train_generative (off by default) stands on ingest; candidates already waits for ingest
    # through interactions, so the chain (and the Airflow DAG) gets no extra ingest edge.
    after = {step.name: step.after for step in steps.chain(load_config())}
    assert after["candidates"] == ("interactions", "train_sequential")
    no_models = load_config(overrides=["candidates.sequential.train_in_daily=false"])
    assert {step.name: step.after for step in steps.chain(no_models)}["candidates"] == ("interactions",)
    # a declared edge stays even when implied: publish names candidates itself.
    assert after["publish"] == ("candidates", "train_ranker", "assign_experiments")


def test_every_step_names_real_tables_and_a_callable_with_the_step_signature():
    tables = set(TablesConfig.model_fields)
    for step in steps.STEPS:
        assert set(step.reads) <= tables and set(step.writes) <= tables, step.name
        function = step.function()
        assert callable(function), step.name
        assert list(function.__code__.co_varnames[:4]) == ["spark", "cfg", "ds", "run_id"], step.name


def test_tables_follow_their_configured_names():
    cfg = load_config(overrides=["tables.ranked_recs=recs_v2"])
    assert steps.get("publish").output_tables(cfg) == ["recs_v2"]


def test_without_train_in_daily_publish_follows_candidates_and_the_assignments():
    chain = steps.chain(load_config(overrides=["ranking.train_in_daily=false"]))
    assert [step.name for step in chain] == [name for name in CHAIN if name != "train_ranker"]
    by_name = {step.name: step for step in chain}
    assert by_name["publish"].after == ("candidates", "assign_experiments")
    assert all("train_ranker" not in step.after for step in chain)


def test_an_unknown_step_names_the_valid_ones():
    with pytest.raises(Exception, match="expected one of ingest, interactions, train_sequential, train_generative, candidates"):
        steps.get("recommend")


@pytest.fixture
def ran(monkeypatch):
    """Every step function replaced by a recorder of (step, ds, run_id); no Spark needed."""
    calls = []

    def recorder(step):
        def run(spark, cfg, ds, run_id):
            calls.append((step.name, ds, run_id))
        return run

    monkeypatch.setattr(steps.Step, "function", recorder)
    monkeypatch.setattr(daily.lake, "last_write_rows", lambda spark, cfg, table: 0)
    monkeypatch.setattr(daily.lake, "table_exists", lambda spark, cfg, table: True)
    monkeypatch.setattr(daily, "completed_days", lambda spark, cfg: set())
    return calls


@pytest.mark.parametrize("overrides", [[], ["ranking.train_in_daily=false"]])
def test_daily_and_backfill_run_the_chain_in_order(ran, overrides):
    cfg = load_config(overrides=overrides)
    expected = [step.name for step in steps.chain(cfg)]
    daily.run(None, cfg, DAY, "r")
    assert ran == [(name, DAY, "r") for name in expected]
    ran.clear()
    assert daily.backfill(None, cfg, "2026-11-01", "2026-11-02", "b") == ["2026-11-01", "2026-11-02"]
    assert ran == [(name, ds, f"b-{ds}") for ds in ("2026-11-01", "2026-11-02") for name in expected]


def test_backfill_skips_complete_days(ran, monkeypatch):
    monkeypatch.setattr(daily, "completed_days", lambda spark, cfg: {"2026-11-01"})
    assert daily.backfill(None, load_config(), "2026-11-01", "2026-11-02", "b") == ["2026-11-02"]
    assert {ds for _, ds, _ in ran} == {"2026-11-02"}


def test_a_step_command_runs_that_step_only(ran, monkeypatch):
    monkeypatch.setattr(cli, "_session", lambda cfg: None)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["publish", "--ds", DAY, "--run-id", "one"])
    assert exit_.value.code == 0
    assert ran == [("publish", DAY, "one")]


def test_the_step_line_gives_rows_per_table_and_duration():
    report = daily.StepReport("ingest", DAY, 12.34, {"listens": 28706, "quarantined_events": 34, "ingest_audit": 1})
    assert report.line() == "ingest 2026-11-07: 28,706 rows to listens, 34 to quarantined_events, 1 to ingest_audit in 12.3 s"
    assert daily.StepReport("mark_complete", DAY, 0.5, {"pipeline_runs": 1}).line() == \
        "mark_complete 2026-11-07: 1 row to pipeline_runs in 0.5 s"
    refused = train_ranker.TrainResult(train_ranker.REFUSED, "ndcg 0.31 < champion 0.33")
    assert daily.StepReport("train_ranker", DAY, 3.0, {}, steps.gate_outcome(refused)).line() == \
        "train_ranker 2026-11-07: refused: ndcg 0.31 < champion 0.33 in 3.0 s"


def test_a_day_is_one_summary_line_and_a_backfill_closes_with_a_time_table():
    reports = [daily.StepReport("ingest", DAY, 12.0, {"listens": 28706, "quarantined_events": 34, "ingest_audit": 1}),
               daily.StepReport("candidates", DAY, 30.0, {"candidates": 272809}),
               daily.StepReport("train_ranker", DAY, 0.0, {}, "skipped: not enough history for ..."),
               daily.StepReport("publish", DAY, 9.0, {"ranked_recs": 161250}, "served model_version 3"),
               daily.StepReport("mark_complete", DAY, 0.5, {"pipeline_runs": 1})]
    assert daily.day_line(DAY, reports) == (
        "2026-11-07: 28,706 listens, 34 quarantined_events, 272,809 candidates, 161,250 ranked_recs; "
        "ranker skipped; served model_version 3 in 52 s (slowest: candidates 30 s, ingest 12 s, publish 9 s)")
    table = daily.time_table({DAY: reports, "2026-11-08": reports[:2]}).splitlines()
    assert table[0].split() == ["seconds", "11-07", "11-08", "total"]
    assert table[2].split() == ["candidates", "30.0", "30.0", "60.0"]
    assert table[-1].split() == ["total", "51.5", "42.0", "93.5"]
    assert table[3].split() == ["train_ranker", "0.0", "0.0", "0.0"]


def test_a_failing_step_keeps_its_exception_and_is_tagged_with_the_step(monkeypatch):
    def fail(step):
        def run(spark, cfg, ds, run_id):
            raise IngestError("raw input for 2026-11-07 holds no events")
        return run
    monkeypatch.setattr(steps.Step, "function", fail)
    with pytest.raises(IngestError) as raised:
        daily.run(None, load_config(), DAY, "r")
    assert steps.failed_step(raised.value) == ("ingest", DAY)


# --------------------------------------------------------------------------- the command's failures

def tagged(exc, step="publish"):
    steps.tag_failure(exc, steps.get(step), DAY)
    return exc


CONFLICT_LINE = (f"publish {DAY}: another run wrote this day of ranked_recs at the same time "
                 "(ConcurrentAppendException); rerun if it was not yours")


def test_a_delta_conflict_from_py4j_maps_to_one_line_and_exit_4():
    # What a Py4JJavaError's text looks like when Delta refuses the commit.
    exc = tagged(RuntimeError(
        "An error occurred while calling o412.save.\n"
        ": io.delta.exceptions.ConcurrentAppendException: [DELTA_CONCURRENT_APPEND] Files were added to "
        "partition [ds=2026-11-07] by a concurrent update. Please try the operation again.\n"
        "\tat io.delta.exceptions.ConcurrentAppendException$.apply(DeltaExceptions.scala:1)"))
    assert cli.explain_failure(exc, load_config()) == (cli.EXIT_CONCURRENT_WRITE, CONFLICT_LINE)


def test_a_converted_delta_conflict_names_the_configured_table():
    exc = tagged(ConcurrentAppendException(message="[DELTA_CONCURRENT_APPEND] Files were added by a concurrent update"))
    code, line = cli.explain_failure(exc, load_config(overrides=["tables.ranked_recs=recs_v2"]))
    assert code == cli.EXIT_CONCURRENT_WRITE and "this day of recs_v2" in line


def test_a_conflict_in_the_cause_chain_is_found_too():
    try:
        try:
            raise RuntimeError("io.delta.exceptions.ConcurrentWriteException: a concurrent transaction wrote")
        except RuntimeError as inner:
            raise ValueError("write failed") from inner
    except ValueError as outer:
        code, line = cli.explain_failure(outer)
    assert code == cli.EXIT_CONCURRENT_WRITE and "ConcurrentWriteException" in line


def test_other_known_spark_failures_have_their_own_exit_codes():
    oom = RuntimeError("An error occurred while calling o9.collectToPython.\n: java.lang.OutOfMemoryError: Java heap space")
    assert cli.explain_failure(oom)[0] == cli.EXIT_OUT_OF_MEMORY
    assert "spark.driver_memory" in cli.explain_failure(oom)[1]
    gateway = RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.")
    assert cli.explain_failure(gateway)[0] == cli.EXIT_SPARK_UNAVAILABLE
    assert cli.explain_failure(ValueError("a bug of ours")) is None


def failing_with(exc):
    def command(args):
        raise exc
    return command


def namespace():
    return cli.command_parser().parse_args(["publish", "--ds", DAY])


def test_the_command_ends_a_conflict_with_one_line_and_exit_4(capsys):
    exc = tagged(RuntimeError(": io.delta.exceptions.ConcurrentAppendException: Files were added"))
    assert cli.run_command(failing_with(exc), namespace()) == cli.EXIT_CONCURRENT_WRITE
    err = capsys.readouterr().err
    assert err == f"setlist publish: error: {CONFLICT_LINE}\n"


def test_our_errors_exit_1_config_errors_2_and_bugs_keep_their_traceback(capsys):
    assert cli.run_command(failing_with(IngestError("raw input missing at data/raw/ds=x")), namespace()) == 1
    assert cli.run_command(failing_with(ConfigError("unknown config key 'ranking.bogus'")), namespace()) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["setlist publish: error: raw input missing at data/raw/ds=x",
                   "setlist publish: config error: unknown config key 'ranking.bogus'"]
    with pytest.raises(ZeroDivisionError):
        cli.run_command(failing_with(ZeroDivisionError()), namespace())


def test_train_ranker_exits_3_on_a_refusal_only_with_fail_on_refusal(monkeypatch):
    refused = train_ranker.TrainResult(train_ranker.REFUSED, "worse than the champion")
    monkeypatch.setattr(cli, "_session", lambda cfg: None)
    monkeypatch.setattr(daily, "run_step", lambda spark, cfg, step, ds, run_id:
                        daily.StepReport(step, ds, 1.0, {}, steps.gate_outcome(refused), refused))
    for argv, code in ([[], 0], [["--fail-on-refusal"], cli.EXIT_GATE_REFUSED]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["train_ranker", "--ds", DAY, *argv])
        assert exit_.value.code == code


def setlist(*argv):
    return subprocess.run([sys.executable, "-m", "setlist.cli", *argv], capture_output=True, text=True, timeout=60)


def test_a_malformed_ds_names_the_flag_and_the_format():
    proc = setlist("publish", "--ds", "bad")
    assert proc.returncode == 2
    assert "argument --ds: 'bad' is not a date; expected yyyy-MM-dd" in proc.stderr
    assert "argument --ds" in setlist("ingest", "--ds", "2026-13-01").stderr


def test_an_unknown_command_lists_every_step():
    proc = setlist("recommend", "--ds", DAY)
    assert proc.returncode == 2 and "invalid choice: 'recommend'" in proc.stderr
    assert all(f"'{name}'" in proc.stderr for name in CHAIN + ["daily", "backfill"])


def test_the_spark_submit_entry_dispatches_to_the_same_command():
    proc = subprocess.run([sys.executable, "jobs/setlist_job.py", "steps", "--set", "ranking.train_in_daily=false"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[1] for line in proc.stdout.splitlines()] == [n for n in CHAIN if n != "train_ranker"]
