"""Shared pieces of the importers: file checks and the listens layout."""
from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from setlist.events import LISTENS_SCHEMA
from setlist.importers import ImportDataError


def existing_file(path: str | Path, what: str) -> str:
    """``path`` as a string, or ImportDataError naming ``what`` was expected there."""
    path = Path(path)
    if not path.is_file():
        raise ImportDataError(f"{what}: expected a file at {path}, found none")
    return str(path)


def require_columns(df: DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ImportDataError(f"{source}: missing column(s) {missing}; found {df.columns}")


def as_listens(events: DataFrame) -> DataFrame:
    """Cast and order ``events`` to the ``listens`` table layout (``ds`` from ``ts``)."""
    with_ds = events.withColumn("ds", F.date_format("ts", "yyyy-MM-dd"))
    return with_ds.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in LISTENS_SCHEMA.fields])


def bad_rows(parsed: DataFrame, required: list[str]) -> Column:
    """True where any of ``required`` failed to parse (null)."""
    condition = F.lit(False)
    for column in required:
        condition = condition | F.col(column).isNull()
    return condition


def check_parsed(parsed: DataFrame, required: list[str], source: str) -> DataFrame:
    """``parsed`` unchanged; ImportDataError with an example line when a row did not parse.

    An action (a single-row lookup): importers run once per data set, not per day.
    """
    bad = parsed.where(bad_rows(parsed, required)).limit(1).collect()
    if bad:
        raise ImportDataError(f"{source}: a line does not match the expected format: {bad[0].asDict()}")
    return parsed
