"""Importers: public data sets -> Setlist inputs (listens-like events or pre-aggregated play counts).

Each module documents how every field of its data set maps onto Setlist's columns. They read
only the paths they are given (a sample or a full copy of the same data set) and return
DataFrames; ``setlist.pipeline.import_public`` writes them to the lake.
"""
from setlist.errors import SetlistError


class ImportDataError(SetlistError):
    """A public data file is missing or not in the format its importer expects."""
