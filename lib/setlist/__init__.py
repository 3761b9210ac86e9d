"""Setlist: daily music recommendations on PySpark and Delta Lake."""

__version__ = "0.1.0"
