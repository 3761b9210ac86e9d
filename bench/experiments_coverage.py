"""Check the A/B analysis on simulated experiments with a known effect.

Prints interval coverage of the true effect (should be ~1 - alpha), the A/A
false-positive rate (should be ~alpha), CUPED vs plain interval width, and the rate at which
a deliberately worse variant (``--worse-lift``, default -3 %) is detected (its interval lies
wholly below zero) at the configured sample size.

    .venv/bin/python bench/experiments_coverage.py --simulations 1000
"""
from __future__ import annotations

import argparse
import time

from setlist.config import ExperimentConfig, load_config
from setlist.errors import ConfigError
from setlist.experiments.simulator import coverage_study, run_simulations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", help="config file(s); default conf/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    parser.add_argument("--experiment", help="configured experiment whose allocation is simulated "
                                             "(default: the first one)")
    parser.add_argument("--simulations", type=int, help="default experiments.simulator.n_simulations")
    parser.add_argument("--users", type=int, help="default experiments.simulator.n_users")
    parser.add_argument("--seed", type=int, help="default experiments.simulator.seed")
    parser.add_argument("--worse-lift", type=float, default=-0.03,
                        help="relative effect of the deliberately worse variant (negative)")
    args = parser.parse_args()

    cfg = load_config(args.config, args.overrides).experiments
    experiments: dict[str, ExperimentConfig] = {e.name: e for e in cfg.experiments}
    if not experiments:
        raise ConfigError("experiments.experiments is empty: nothing to simulate")
    name = args.experiment or next(iter(experiments))
    if name not in experiments:
        raise ConfigError(f"experiment '{name}' is not configured; have {sorted(experiments)}")

    started = time.perf_counter()
    summary = coverage_study(experiments[name], cfg, args.simulations, args.users, args.seed)
    elapsed = time.perf_counter() - started
    level = 1 - summary.alpha
    print(f"experiment {name}: allocation {experiments[name].allocation}, metric {cfg.simulator.metric}")
    print(f"{summary.n_simulations} simulations x 2 (effect, A/A) of {summary.n_users} users, "
          f"true relative lift {summary.relative_lift:.1%}, in {elapsed:.1f} s")
    print(f"coverage of the {level:.0%} interval (target {level:.2f}):")
    print(f"  absolute (Welch)           {summary.coverage_absolute:.3f}")
    print(f"  relative (delta method)    {summary.coverage_relative:.3f}")
    print(f"  CUPED absolute             {summary.coverage_cuped:.3f}")
    print(f"  CUPED relative             {summary.coverage_cuped_relative:.3f}")
    print(f"A/A false-positive rate (target {summary.alpha:.2f}):")
    print(f"  plain                      {summary.aa_false_positive_rate:.3f}")
    print(f"  CUPED                      {summary.aa_false_positive_rate_cuped:.3f}")
    print("interval width (absolute, mean):")
    print(f"  plain                      {summary.mean_ci_width_plain:.2f}")
    print(f"  CUPED                      {summary.mean_ci_width_cuped:.2f}  "
          f"(ratio {summary.width_ratio_cuped_to_plain:.3f}, "
          f"variance reduction {summary.mean_variance_reduction:.1%})")
    print(f"power at alpha {summary.alpha:g}: plain {summary.power_plain:.3f}, CUPED {summary.power_cuped:.3f}")
    worse = run_simulations(experiments[name], cfg, summary.n_simulations, args.worse_lift,
                            seed=[summary.n_simulations, 3], n_users=summary.n_users)
    print(f"a worse variant ({args.worse_lift:+.1%}) detected (interval wholly below 0) in "
          f"{(worse['abs_ci_high'] < 0).mean():.3f} of simulations plain, "
          f"{(worse['cuped_ci_high'] < 0).mean():.3f} with CUPED, at {summary.n_users:,} users")


if __name__ == "__main__":
    main()
