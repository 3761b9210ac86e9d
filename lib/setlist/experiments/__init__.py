"""A/B experiments: salted assignment, statistics (Welch, delta method, CUPED, SRM), simulation."""
from setlist.experiments.analysis import (
    ExperimentDataError, analyze, effects_plot, report_markdown, sample_ratio_check)
from setlist.experiments.assignment import assign_users, assign_variant, bucket_of
from setlist.experiments.simulator import (
    CoverageSummary, coverage_study, run_simulations, simulate_events, simulate_users, true_effect)

__all__ = [
    "CoverageSummary", "ExperimentDataError", "analyze", "assign_users", "assign_variant", "bucket_of",
    "coverage_study", "effects_plot", "report_markdown", "run_simulations", "sample_ratio_check",
    "simulate_events", "simulate_users", "true_effect",
]
