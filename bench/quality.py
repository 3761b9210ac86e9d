"""Recommendation quality on real public data, against strong simple baselines.

    .venv/bin/python bench/quality.py [--data /work/shared/data] [--datasets hetrec,movielens1m]
        [--seeds 0,1,2] [--set ranking.num_leaves=63 ...]

The evaluated users' target items never reach Setlist: only their known part is written to a
fresh lake, and the lists are made by the same steps ``setlist run-public`` runs
(``pipeline.train_on_split`` -> ``pipeline.candidates`` -> ``pipeline.publish``): the ranker is
scored through the publishing code, on its own inner split of the known part.

- HetRec Last.fm-2k: per user a seeded 50 % of the artists is known, the other 50 % the target
  (users with at least 2 artists); tag assignments on target pairs are dropped too (a user
  who tagged an artist knows it). Seeds 0, 1, 2.
- MovieLens-1M, users 1-2999: one global time cut at ``--ml-quantile`` of the rating times;
  the target is each user's ratings >= 4 in the next ``--ml-horizon-days`` days (warm users:
  those with a rating before the cut). The seed varies the ranker's split and models.

Every list leaves out the user's known items. Per list: NDCG@10, Recall@10, Recall@100, HR@10
and user coverage (share of target users with a list), mean ± sd over the seeds; the union's
Recall is that of all candidates (the ceiling the ranker works under). Baselines beside
Setlist's sources: a reference EASE in numpy (lambda 300, every item) and ``implicit``'s BM25
item-KNN. The table and a bar chart per data set are logged to MLflow (``--mlflow``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import implicit_source, reference_ease  # noqa: E402

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from setlist import lake, tracking  # noqa: E402
from setlist.config import SetlistConfig, load_config  # noqa: E402
from setlist.evaluation import cutoff_at_quantile, per_user_holdout, per_user_metrics  # noqa: E402
from setlist.importers.hetrec import read_friends, read_play_counts, read_tag_assignments  # noqa: E402
from setlist.importers.movielens import ratings_to_listens, read_ml1m_genres, read_ml1m_ratings  # noqa: E402
from setlist.importers.play_counts import interactions_from_play_counts  # noqa: E402
from setlist.pipeline import build_interactions, candidates, publish, run_public, train_on_split  # noqa: E402
from setlist.spark import build_session  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
K, RECALL_KS = 10, [10, 100]
METRICS = [f"ndcg_at_{K}", "recall_at_10", "recall_at_100", f"hit_rate_at_{K}", "coverage"]
TARGETS = {"hetrec": {"best_source": 1.10, "ease_reference": 1.05}, "movielens1m": {"best_source": 1.05}}
BENCH_OVERRIDES = ["spark.log_level=ERROR", "spark.driver_memory=8g", "publish.top_n=100"]


def seeded(cfg: SetlistConfig, seed: int, workdir: Path) -> SetlistConfig:
    """``cfg`` with its own lake and MLflow store under ``workdir`` and the seed in every model."""
    r, c = cfg.ranking, cfg.candidates
    return cfg.model_copy(update={
        "paths": cfg.paths.model_copy(update={"lake": str(workdir / "lake"), "checkpoints": str(workdir / "ck"),
                                              "mlflow_tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
                                              "mlflow_artifacts": str(workdir / "artifacts")}),
        "ranking": r.model_copy(update={"seed": r.seed + seed,
                                        "split": r.split.model_copy(update={"seed": r.split.seed + seed})}),
        "candidates": c.model_copy(update={"als": c.als.model_copy(update={"seed": c.als.seed + seed})})})


def setlist_lists(spark: SparkSession, cfg: SetlistConfig, ds: str) -> DataFrame:
    """Run the ranker training, candidates and publish steps; (list, user_id, track_id, rank)."""
    run_id = f"quality-{ds}"
    train_on_split.run(spark, cfg, ds, run_id)
    candidates.run(spark, cfg, ds, run_id)
    publish.run(spark, cfg, ds, run_id)
    union = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    lists = [union.where(F.col(f"{s}_flag")).select(F.lit(s).alias("list"), "user_id", "track_id",
                                                    F.col(f"{s}_rank").alias("rank"))
             for s in cfg.candidates.sources]
    lists.append(union.select(F.lit("union").alias("list"), "user_id", "track_id", F.lit(1).alias("rank")))
    lists.append(lake.read_table(spark, cfg, cfg.tables.ranked_recs, ds)
                 .select(F.lit("ranker").alias("list"), "user_id", "track_id", "rank"))
    out = lists[0]
    for frame in lists[1:]:
        out = out.unionByName(frame)
    return out


def baseline_lists(spark: SparkSession, known: DataFrame) -> DataFrame:
    from implicit.nearest_neighbours import BM25Recommender
    sources = {"ease_reference": reference_ease(spark, "ease_reference", 300.0, max(RECALL_KS)),
               "item_knn_bm25": implicit_source(spark, "item_knn_bm25", lambda: BM25Recommender(K=100),
                                                max(RECALL_KS))}
    frames = [make(known).select(F.lit(name).alias("list"), "user_id", "track_id", F.col("source_rank").alias("rank"))
              for name, make in sources.items()]
    return frames[0].unionByName(frames[1])


def score(lists: DataFrame, truth: DataFrame) -> pd.DataFrame:
    per_user = per_user_metrics(lists, truth, RECALL_KS, K).cache()
    covered = lists.select("list", "user_id").distinct().withColumn("_has", F.lit(1.0))
    table = (per_user.join(covered, on=["list", "user_id"], how="left")
             .groupBy("list").agg(*[F.avg(m).alias(m) for m in METRICS if m != "coverage"],
                                  F.avg(F.coalesce("_has", F.lit(0.0))).alias("coverage"),
                                  F.count(F.lit(1)).alias("users"))
             .toPandas())
    per_user.unpersist()
    return table


def hetrec_seed(spark: SparkSession, base: SetlistConfig, data: Path, seed: int, workdir: Path) -> pd.DataFrame:
    cfg = seeded(base, seed, workdir)
    folder = data / "lastfm_hetrec2011_2k"
    interactions = interactions_from_play_counts(read_play_counts(spark, str(folder / "user_artists.dat")),
                                                 cfg.importers)
    known, target = per_user_holdout(interactions, 0.5, seed, 2)
    ds = cfg.importers.counts_ds
    lake.write_partition(known, cfg, cfg.tables.interactions, ds, "quality")
    tags = read_tag_assignments(spark, str(folder / "user_taggedartists.dat"))
    hidden = target.select("user_id", F.col("track_id").alias("artist_id"))
    lake.overwrite_table(tags.join(hidden, on=["user_id", "artist_id"], how="left_anti"), cfg,
                         cfg.importers.tag_assignments_table)
    lake.overwrite_table(read_friends(spark, str(folder / "user_friends.dat")), cfg, cfg.tables.user_friends)
    known = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
    lists = setlist_lists(spark, cfg, ds).unionByName(baseline_lists(spark, known))
    return score(lists, target.select("user_id", "track_id"))


def movielens_seed(spark: SparkSession, base: SetlistConfig, data: Path, seed: int, workdir: Path,
                   quantile: float, horizon_days: int) -> pd.DataFrame:
    cfg = seeded(base, seed, workdir)
    folder = data / "movielens_1m_first2999users"
    listens = ratings_to_listens(read_ml1m_ratings(spark, str(folder / "ratings.dat.gz")), cfg.importers,
                                 read_ml1m_genres(spark, str(folder / "movies.dat"))).cache()
    cutoff = cutoff_at_quantile(listens, quantile)
    known = listens.where(F.col("ts") < F.lit(cutoff))
    lake.replace_table(known, cfg, cfg.tables.listens, "quality")
    ds = run_public.run_date(spark, cfg, "movielens1m")
    build_interactions.run(spark, cfg, ds, "quality")
    end = cutoff + pd.Timedelta(days=horizon_days).to_pytimedelta()
    truth = (listens.where((F.col("ts") >= F.lit(cutoff)) & (F.col("ts") < F.lit(end))
                           & (F.col("reason_end") == "trackdone"))
             .join(known.select("user_id").distinct(), on="user_id", how="left_semi")
             .select("user_id", "track_id").distinct())
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
    lists = setlist_lists(spark, cfg, ds).unionByName(baseline_lists(spark, interactions))
    return score(lists, truth)


def summarise(name: str, tables: list[pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    runs = pd.concat(tables, keys=range(len(tables)), names=["seed"]).reset_index(level=0)
    mean, sd = runs.groupby("list")[METRICS].mean(), runs.groupby("list")[METRICS].std(ddof=1).fillna(0.0)
    lines = [f"== {name}: {int(runs['users'].max()):,} target users, {len(tables)} seed(s); mean ± sd",
             f"{'list':<16}" + "".join(f"{m:>20}" for m in METRICS)]
    for list_name in mean.index:
        cells = []
        for m in METRICS:
            if list_name == "union" and not m.startswith("recall"):
                cells.append(f"{'-':>20}")
            else:
                cells.append(f"{mean.loc[list_name, m]:>12.4f} ± {sd.loc[list_name, m]:.4f}")
        lines.append(f"{list_name:<16}" + "".join(cells))
    ndcg = mean[f"ndcg_at_{K}"]
    sources = [s for s in ndcg.index if s not in ("ranker", "union", "ease_reference", "item_knn_bm25")]
    best = ndcg[sources].idxmax()
    refs = {"best_source": (best, ndcg[best]), "ease_reference": ("ease_reference", ndcg["ease_reference"])}
    for ref, factor in TARGETS.get(name, {}).items():
        ref_name, value = refs[ref]
        ratio = ndcg["ranker"] / value
        lines.append(f"target: ranker NDCG@{K} {ndcg['ranker']:.4f} = {ratio:.3f} x {ref_name} ({value:.4f}); "
                     f"target >= {factor:.2f} x: {'MET' if ratio >= factor else 'NOT MET'}")
    coverage = mean.loc["ranker", "coverage"]
    lines.append(f"target: ranker user coverage {coverage:.1%} (target 100%: {'MET' if coverage >= 1 else 'NOT MET'})")
    return mean, lines


def log_to_mlflow(cfg: SetlistConfig, results: dict[str, pd.DataFrame]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tracking.start_run(cfg, "bench-quality", {"step": "bench_quality"}):
        for name, mean in results.items():
            tracking.log_metrics({f"{name}/{lst}/{m}": float(v) for lst, row in mean.iterrows()
                                  for m, v in row.items() if pd.notna(v)})
            tracking.log_dict(mean.reset_index().to_dict(orient="records"), f"{name}_quality.json")
            fig, ax = plt.subplots(figsize=(9, 4))
            shown = mean.drop(index=["union"], errors="ignore")[f"ndcg_at_{K}"].sort_values()
            ax.barh(shown.index, shown.to_numpy(), color=["tab:red" if i == "ranker" else "tab:blue"
                                                            for i in shown.index])
            ax.set_xlabel(f"NDCG@{K}")
            ax.set_title(f"{name}: each source beside the ranker")
            fig.tight_layout()
            tracking.log_figure(fig, f"{name}_ndcg.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--datasets", default="hetrec,movielens1m")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ml-quantile", type=float, default=0.8)
    parser.add_argument("--ml-horizon-days", type=int, default=60)
    parser.add_argument("--mlflow", default="sqlite:///data/mlflow.db", help="tracking URI for the summary run")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name in args.datasets.split(","):
        dataset = "hetrec" if name == "hetrec" else "movielens1m"
        cfg = load_config(run_public.config_files(dataset, None), BENCH_OVERRIDES + args.overrides)
        spark = build_session(cfg.spark)
        tables, started = [], time.perf_counter()
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix=f"setlist-quality-{name}-") as tmp:
                if name == "hetrec":
                    tables.append(hetrec_seed(spark, cfg, args.data, seed, Path(tmp)))
                else:
                    tables.append(movielens_seed(spark, cfg, args.data, seed, Path(tmp), args.ml_quantile,
                                                 args.ml_horizon_days))
            print(f"{name} seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
        results[name], lines = summarise(name, tables)
        print("\n".join(lines), flush=True)
    log_cfg = load_config(overrides=[f"paths.mlflow_tracking_uri={args.mlflow}"])
    log_to_mlflow(log_cfg, results)


if __name__ == "__main__":
    main()
