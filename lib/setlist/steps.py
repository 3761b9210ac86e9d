"""The daily chain, declared once: each step's function, what it waits for, what it reads and writes.

The ``setlist <step>`` subcommands, ``setlist daily`` and ``setlist backfill`` (run by
:mod:`setlist.pipeline.daily`) and the Airflow DAG (``airflow_dags/setlist_daily.py``) are all
built from :data:`STEPS` through :func:`chain`, so they run the same steps in the same order.

This module imports nothing heavier than the config: the DAG loads it in Airflow's own
virtualenv, which has no Spark. A step's function is imported only when the step runs.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Any, Callable

from setlist.config import SetlistConfig
from setlist.errors import SetlistError


def always(cfg: SetlistConfig) -> bool:
    return True


def ranker_in_daily(cfg: SetlistConfig) -> bool:
    return cfg.ranking.train_in_daily


def sequential_in_daily(cfg: SetlistConfig) -> bool:
    return "sequential" in cfg.candidates.sources and cfg.candidates.sequential.train_in_daily


def generative_in_daily(cfg: SetlistConfig) -> bool:
    return "generative" in cfg.candidates.sources and cfg.candidates.generative.train_in_daily


def gate_outcome(result: Any) -> str:
    """train_ranker's TrainResult as one phrase: promoted / refused / skipped and why."""
    return f"{result.status}: {result.message}"


def served_model(model_version: Any) -> str:
    return f"served model_version {model_version}"


@dataclass(frozen=True)
class Step:
    """One step of the daily chain.

    ``target`` is ``"module:function"``, called as ``function(spark, cfg, ds, run_id)``.
    ``after`` names the steps that must have finished first (all earlier in :data:`STEPS`);
    ``reads`` and ``writes`` name fields of ``cfg.tables`` (each write replaces day ``ds``).
    ``enabled`` says whether the step is part of the chain under a config;
    ``outcome`` turns the function's return value into a phrase for the console line.
    """
    name: str
    target: str
    summary: str
    after: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    enabled: Callable[[SetlistConfig], bool] = always
    outcome: Callable[[Any], str] | None = None

    def function(self) -> Callable:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def input_tables(self, cfg: SetlistConfig) -> list[str]:
        return [getattr(cfg.tables, table) for table in self.reads]

    def output_tables(self, cfg: SetlistConfig) -> list[str]:
        return [getattr(cfg.tables, table) for table in self.writes]


STEPS: tuple[Step, ...] = (
    Step("ingest", "setlist.pipeline.ingest:run",
         "validate the day's raw events (paths.raw/ds=<ds>/) into listens; quarantine the rest",
         writes=("listens", "quarantined_events", "ingest_audit")),
    Step("interactions", "setlist.pipeline.build_interactions:run",
         "one row per user and track with a decayed reward",
         after=("ingest",), reads=("listens",), writes=("interactions",)),
    # Writes the day's training shards, an MLflow run, a registered model and, if the gate passes,
    # the sequential champion alias the candidates step scores with.
    Step("train_sequential", "setlist.pipeline.train_sequential:run",
         "train, register and gate the sequential transformer on the play sequences up to the day",
         after=("ingest",), reads=("listens",), writes=("sequences",),
         enabled=sequential_in_daily, outcome=gate_outcome),
    # Off by default (generative is not in candidates.sources): semantic IDs of the day's tracks,
    # an MLflow run, a registered decoder and, if the gate passes, its champion alias.
    Step("train_generative", "setlist.pipeline.train_generative:run",
         "semantic IDs of the day's tracks; train, register and gate the generative retriever",
         after=("ingest",), reads=("listens",), writes=("semantic_ids",),
         enabled=generative_in_daily, outcome=gate_outcome),
    Step("candidates", "setlist.pipeline.candidates:run",
         "candidate tracks per user from every configured source",
         after=("interactions", "train_sequential", "train_generative"), reads=("interactions", "listens"), writes=("candidates",)),
    Step("next_tracks", "setlist.pipeline.next_tracks:run",
         "per seed track, the ranked tracks listeners went on to (a player continues a session with it)",
         after=("ingest",), reads=("listens",), writes=("next_tracks",)),
    Step("assign_experiments", "setlist.pipeline.experiments:assign",
         "bucket every user seen so far into the variants of each experiment",
         after=("ingest",), reads=("listens",), writes=("experiment_assignments",)),
    # Writes no table: an MLflow run, a registered model and, if the gate passes, the champion alias.
    Step("train_ranker", "setlist.pipeline.train_ranker:run",
         "train, register and gate a ranker on earlier days (moves the champion alias if better)",
         after=("candidates",), reads=("candidates", "listens"), writes=("ranker_frames",),
         enabled=ranker_in_daily, outcome=gate_outcome),
    # After the assignments: each assigned user is served the model of their variant.
    Step("publish", "setlist.pipeline.publish:run",
         "rank each user's candidates with the champion and write the top of every surface",
         after=("candidates", "train_ranker", "assign_experiments"),
         reads=("candidates", "interactions", "listens", "experiment_assignments"),
         writes=("ranked_recs",), outcome=served_model),
    Step("analyze_experiment", "setlist.pipeline.experiments:analyze",
         "compare the variants of every running experiment (plain and CUPED, with an SRM check)",
         after=("publish",), reads=("listens", "experiment_assignments"), writes=("experiment_results",)),
    # Last: backfill skips a day once its marker is written.
    Step("mark_complete", "setlist.pipeline.daily:mark_complete",
         "record the day as complete in pipeline_runs (backfill skips complete days)",
         after=("analyze_experiment", "next_tracks"), writes=("pipeline_runs",)),
)

BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}
NAMES: list[str] = [step.name for step in STEPS]


def chain(cfg: SetlistConfig) -> list[Step]:
    """The steps enabled under ``cfg``, in order.

    A disabled step's dependants wait for its own upstream steps instead, so dropping
    ``train_ranker`` makes ``publish`` follow ``candidates`` directly.
    """
    enabled = {step.name for step in STEPS if step.enabled(cfg)}
    kept: dict[str, tuple[str, ...]] = {}  # enabled step -> its upstream steps, in STEPS order

    def ancestors(name: str) -> set[str]:
        return {a for up in kept[name] for a in (up, *ancestors(up))}

    def stand_ins(name: str) -> list[str]:
        return [name] if name in enabled else [up for after in BY_NAME[name].after for up in stand_ins(after)]

    for step in STEPS:
        if step.name not in enabled:
            continue
        declared = [name for name in step.after if name in enabled]
        implied = set().union(set(), *(ancestors(name) for name in declared))
        after = list(declared)
        for name in step.after:
            for up in ([] if name in enabled else stand_ins(name)):
                # A stand-in another upstream already waits for adds nothing: with train_generative
                # off, candidates waits for interactions (after ingest), not for ingest as well.
                if up not in after and up not in implied:
                    after.append(up)
        kept[step.name] = tuple(after)
    return [replace(step, after=kept[step.name]) for step in STEPS if step.name in enabled]


def tag_failure(exc: BaseException, step: Step, ds: str) -> None:
    """Remember on ``exc`` which step and day it escaped from (kept if already tagged)."""
    if failed_step(exc) is None:
        try:
            exc._setlist_step = (step.name, ds)
        except AttributeError:  # an exception type without a __dict__
            pass
        exc.add_note(f"while running step {step.name} for {ds}")


def failed_step(exc: BaseException) -> tuple[str, str] | None:
    """(step name, ds) of the step ``exc`` escaped from, when it was tagged by :func:`tag_failure`."""
    return getattr(exc, "_setlist_step", None)


def get(name: str) -> Step:
    """The step called ``name``; a SetlistError naming the valid steps otherwise."""
    if name not in BY_NAME:
        raise SetlistError(f"unknown step {name!r}; expected one of {', '.join(NAMES)}")
    return BY_NAME[name]
