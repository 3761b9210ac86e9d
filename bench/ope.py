"""Off-policy evaluation against the truth of a simulator: do OPE estimates predict A/B tests?

    .venv/bin/python bench/ope.py [--users 1000] [--days 6] [--seeds 20]
        [--workdir /tmp/setlist-bench-ope] [--reuse] [--set section.key=value ...]

Generates ``--days`` days into a fresh lake, runs the daily chain, and takes the ranker's split of
the last day. The champion is the daily ranker fitted on its train and valid days; the contexts
are the eval day's lists (user, surface) with their candidates. Outcomes come from the
position-based response model of ``setlist.ope.simulation`` over the generator's true affinity
(``ope.simulator``), so every policy's true value is exact.

Challengers, better, equal and worse than the champion: the champion itself; the champion's
score plus 0.5 or 1 standard deviation of the true affinity (better); plus 0.5 or 1.5 standard
deviations of noise (worse); the tracks' popularity alone (worse).

Per seed: the champion serves every list under ``publish.exploration`` (the bench turns on
``epsilon_greedy`` at its default epsilon unless ``--set`` says otherwise) and outcomes are drawn;
each challenger is valued from those logs by ``setlist.ope.valuation.value_policy`` (what
``setlist ope`` runs) and served in a simulated A/B test to a fresh half of the lists.
Printed next to the targets: Spearman correlation of the DR estimates with the A/B outcomes,
DR's relative error against the true value, CI coverage of the true value, and the exploration's
cost in the champion's true value.
"""
from __future__ import annotations

import argparse
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from workdir import run_generated_split, workdir_paths

from setlist.config import load_config
from setlist.features import feature_columns
from setlist.generator import true_affinity_of
from setlist.ope.estimators import ESTIMATORS
from setlist.ope.exposures import list_key, position_marginals, serve_lists
from setlist.ope.simulation import draw_rewards, expected_value
from setlist.ope.valuation import value_policy
from setlist.pipeline.train_ranker import fit_layouts
from setlist.ranking import predict
from setlist.spark import build_session

START = "2026-11-01"
TARGET_CORRELATION, TARGET_RELATIVE_ERROR, TARGET_COVERAGE, TARGET_COST = 0.9, 0.10, 0.90, 0.02


def contexts(cfg, frames) -> pd.DataFrame:
    """The eval day's lists: list_id, surface, track_id, affinity, logging_score (the champion)."""
    features = feature_columns(cfg)
    booster, _ = fit_layouts(frames, cfg, features)
    frame = frames["eval"]
    out = pd.DataFrame({"surface": frame["surface"].astype(str).to_numpy(),
                        "user_id": frame["user_id"].astype(str).to_numpy(),
                        "track_id": frame["track_id"].astype(str).to_numpy(),
                        "logging_score": predict(booster, frame),
                        "popularity": frame["track_users"].to_numpy(dtype=float)})
    out["list_id"] = [list_key("eval", u, s) for u, s in zip(out["user_id"], out["surface"])]
    out["affinity"] = true_affinity_of(cfg.generator, out["user_id"], out["track_id"])
    return out


def challengers(lists: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    score, spread = lists["logging_score"].to_numpy(), lists["logging_score"].std()
    truth = (lists["affinity"] - lists["affinity"].mean()) / lists["affinity"].std()
    return {"champion (equal)": score,
            "+1.0 sd truth": score + 1.0 * spread * truth.to_numpy(),
            "+0.5 sd truth": score + 0.5 * spread * truth.to_numpy(),
            "+0.5 sd noise": score + 0.5 * spread * rng.standard_normal(len(score)),
            "+1.5 sd noise": score + 1.5 * spread * rng.standard_normal(len(score)),
            "popularity": np.log1p(lists["popularity"].to_numpy())}


def true_values(lists, scores, policy, cfg, affinity) -> float:
    marginals = position_marginals(lists.assign(score=scores), "score", policy, cfg.ope.slate)
    return float(expected_value(marginals, affinity, cfg.ope.simulator, cfg.ope.slate).mean())


def study(cfg, lists: pd.DataFrame, seeds: int) -> pd.DataFrame:
    policy, sim, slate = cfg.publish.exploration, cfg.ope.simulator, cfg.ope.slate
    affinity = lists.set_index(["list_id", "track_id"])["affinity"]
    scored = challengers(lists, sim.seed)
    truth = {name: true_values(lists, s, policy, cfg, affinity) for name, s in scored.items()}
    arm_b = np.array([zlib.crc32(k.encode()) % 2 == 1 for k in lists["list_id"].unique()])
    b_lists = set(lists["list_id"].unique()[arm_b])
    rows = []
    for seed in range(seeds):
        tick = time.perf_counter()
        logging = policy.model_copy(update={"seed": policy.seed + seed})
        served = serve_lists(lists, "logging_score", logging, cfg.publish.top_n)
        served["reward"] = draw_rewards(served, affinity, sim, np.random.default_rng([sim.seed, seed, 0]))
        for index, (name, scores) in enumerate(scored.items()):
            candidates = lists[["list_id", "surface", "track_id", "logging_score"]].assign(target_score=scores)
            estimates = value_policy(candidates, served, logging, cfg.ope, seed)
            at = estimates[(estimates.surface == "all") & (estimates.setting == "slate")].set_index("estimator")
            arm = candidates[candidates["list_id"].isin(b_lists)]
            ab = serve_lists(arm, "target_score", logging.model_copy(update={"seed": logging.seed + 10_000}), slate)
            ab_reward = draw_rewards(ab, affinity, sim, np.random.default_rng([sim.seed, seed, 1 + index]))
            ab_value = ab_reward.sum() / arm["list_id"].nunique()
            for estimator, row in at.iterrows():
                rows.append({"seed": seed, "challenger": name, "estimator": estimator, "estimate": row["value"],
                             "ci_low": row["ci_low"], "ci_high": row["ci_high"], "ess": row["ess"],
                             "truth": truth[name], "ab": ab_value})
        print(f"  seed {seed}: {time.perf_counter() - tick:.1f} s", flush=True)
    return pd.DataFrame(rows)


def report(results: pd.DataFrame, cfg, cost: float) -> None:
    policy = cfg.publish.exploration
    print(f"\nexploration: {policy.policy} (epsilon {policy.epsilon}, temperature {policy.temperature}, "
          f"pool {policy.pool}); value = expected listens in the first {cfg.ope.slate} positions per list")
    summary = results.groupby(["challenger", "estimator"]).agg(
        estimate=("estimate", "mean"), sd=("estimate", "std"), truth=("truth", "first"), ab=("ab", "mean"),
        ess=("ess", "mean")).reset_index()
    print(f"\n{'challenger':<18}{'truth':>8}{'A/B':>8}" + "".join(f"{e:>9}" for e in ESTIMATORS))
    for name, group in summary.groupby("challenger", sort=False):
        by = group.set_index("estimator")
        print(f"{name:<18}{by['truth'].iloc[0]:>8.4f}{by['ab'].iloc[0]:>8.4f}"
              + "".join(f"{by.loc[e, 'estimate']:>9.4f}" for e in ESTIMATORS))
    print(f"\n{'estimator':<10}{'spearman(seed median)':>22}{'rel. error':>12}{'coverage':>10}{'ESS':>9}")
    for estimator, group in results.groupby("estimator"):
        rho = group.groupby("seed").apply(lambda g: stats.spearmanr(g["estimate"], g["ab"]).statistic,
                                          include_groups=False)
        error = ((group["estimate"] - group["truth"]).abs() / group["truth"]).mean()
        covered = ((group["ci_low"] <= group["truth"]) & (group["truth"] <= group["ci_high"])).mean()
        print(f"{estimator:<10}{rho.median():>22.3f}{error:>12.1%}{covered:>10.1%}{group['ess'].mean():>9.0f}")
    for headline in dict.fromkeys([cfg.ope.gate_estimator, "pbm_ips", "pbm_dr"]):
        targets(results[results.estimator == headline], headline, cost)


def targets(dr: pd.DataFrame, headline: str, cost: float) -> None:
    rho = dr.groupby("seed").apply(lambda g: stats.spearmanr(g["estimate"], g["ab"]).statistic, include_groups=False)
    per = dr.assign(error=(dr["estimate"] - dr["truth"]).abs() / dr["truth"],
                    covered=(dr["ci_low"] <= dr["truth"]) & (dr["truth"] <= dr["ci_high"]))
    print(f"\n{headline}, {dr['challenger'].nunique()} challengers x {dr['seed'].nunique()} seeds:")
    print(per.groupby("challenger")[["error", "covered"]].mean().to_string(float_format=lambda v: f"{v:.3f}"))
    error, worst, covered = per["error"].mean(), per.groupby("challenger")["error"].mean().max(), per["covered"].mean()
    print(f"  rank correlation with the A/B outcomes (Spearman, median over seeds): {rho.median():.3f}"
          f"   target >= {TARGET_CORRELATION}  {'MET' if rho.median() >= TARGET_CORRELATION else 'NOT MET'}")
    print(f"  relative error against the true value (mean; worst challenger {worst:.1%}): {error:.1%}"
          f"   target <= {TARGET_RELATIVE_ERROR:.0%}  {'MET' if error <= TARGET_RELATIVE_ERROR else 'NOT MET'}")
    print(f"  95% CI coverage of the true value: {covered:.1%}"
          f"   target >= {TARGET_COVERAGE:.0%}  {'MET' if covered >= TARGET_COVERAGE else 'NOT MET'}")
    print(f"  exploration's cost in the champion's true value: {cost:.2%}"
          f"   target < {TARGET_COST:.0%}  {'MET' if cost < TARGET_COST else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/setlist-bench-ope"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the lists a previous run saved in --workdir (skips generating and the chain)")
    args = parser.parse_args()
    saved = args.workdir / "lists.parquet"
    if not (args.reuse and saved.exists()):
        shutil.rmtree(args.workdir, ignore_errors=True)
    overrides = [f"generator.n_users={args.users}", "candidates.sequential.train_in_daily=false",
                 "ranking.train_in_daily=false", "publish.exploration.policy=epsilon_greedy",
                 *workdir_paths(args.workdir), *args.overrides]
    cfg = load_config(overrides=overrides)
    if args.reuse and saved.exists():
        lists = pd.read_parquet(saved)
    else:
        spark = build_session(cfg.spark)
        _, frames = run_generated_split(spark, cfg, START, args.days)
        spark.stop()
        lists = contexts(cfg, frames)
        lists.to_parquet(saved)
    print(f"{lists['list_id'].nunique():,} lists, {len(lists):,} candidates")
    affinity = lists.set_index(["list_id", "track_id"])["affinity"]
    greedy = true_values(lists, lists["logging_score"], cfg.publish.exploration.model_copy(update={"policy": "none"}),
                         cfg, affinity)
    explored = true_values(lists, lists["logging_score"], cfg.publish.exploration, cfg, affinity)
    results = study(cfg, lists, args.seeds)
    results.to_csv(args.workdir / "results.csv", index=False)
    report(results, cfg, (greedy - explored) / greedy)


if __name__ == "__main__":
    main()
