"""A/B experiments: salted assignment, statistics (Welch, delta method, CUPED, SRM), simulation."""
from setlist.experiments.analysis import (
    ExperimentDataError, analyze, analyze_moments, sample_ratio_check, sample_ratio_from_counts)
from setlist.experiments.report import effects_plot, report_markdown
from setlist.experiments.assignment import assign_users, assign_variant, bucket_of
from setlist.experiments.simulator import (
    CoverageSummary, coverage_study, run_simulations, simulate_events, simulate_users, true_effect)

__all__ = [
    "CoverageSummary", "ExperimentDataError", "analyze", "analyze_moments", "assign_users", "assign_variant", "bucket_of",
    "coverage_study", "effects_plot", "report_markdown", "run_simulations", "sample_ratio_check",
    "sample_ratio_from_counts",
    "simulate_events", "simulate_users", "true_effect",
]
