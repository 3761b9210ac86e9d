"""What the daily run wrote for a date: row counts per table and one user's list."""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.config import SetlistConfig


def run(spark: SparkSession, cfg: SetlistConfig, ds: str) -> str:
    lines = [f"Setlist tables for ds={ds} in {cfg.paths.lake}:"]
    for table in cfg.tables.model_dump().values():
        if lake.table_exists(spark, cfg, table):
            rows = lake.read_table(spark, cfg, table, ds).count()
            lines.append(f"  {table:<20} {rows:>10,} rows")
    audit = lake.read_table(spark, cfg, cfg.tables.ingest_audit, ds).first()
    if audit:
        lines.append(f"  ingest: read {audit['rows_read']:,}, accepted {audit['accepted']:,}, "
                     f"quarantined {audit['quarantined']:,} {dict(audit['reasons'])}, "
                     f"duplicates {audit['duplicates']:,}")
    recs = lake.read_table(spark, cfg, cfg.tables.ranked_recs, ds)
    first_user = recs.agg(F.min("user_id")).first()[0]
    if first_user is not None:
        lines.append(f"  top {TOP} per surface for {first_user}:")
        mine = recs.where((F.col("user_id") == first_user) & (F.col("rank") <= TOP))
        for row in mine.orderBy("surface", "rank").collect():
            lines.append(f"    {row['surface']:<12} {row['rank']:>2}. {row['track_id']}  score={row['score']:.4f}  "
                         f"sources={','.join(row['sources'])}  model_version={row['model_version']}")
        lines += [f"  {a} vs {b}: {share:.0%} of the top {TOP} in common on average"
                  for a, b, share in top_overlap(recs)]
    return "\n".join(lines)


TOP = 5


def top_overlap(recs) -> list[tuple[str, str, float]]:
    """(surface a, surface b, mean share of a user's top TOP the two surfaces have in common)."""
    tops = (recs.where(F.col("rank") <= TOP).groupBy("user_id", "surface")
            .agg(F.collect_set("track_id").alias("tracks")))
    a, b = tops.alias("a"), tops.alias("b")
    pairs = (a.join(b, on=(F.col("a.user_id") == F.col("b.user_id")) & (F.col("a.surface") < F.col("b.surface")))
             .groupBy(F.col("a.surface").alias("sa"), F.col("b.surface").alias("sb"))
             .agg(F.avg(F.size(F.array_intersect("a.tracks", "b.tracks")) / F.lit(float(TOP))).alias("share")))
    return [(r["sa"], r["sb"], r["share"]) for r in pairs.orderBy("sa", "sb").collect()]
