"""Recommend step, kept for jobs/recommend.py: it is now the candidates step (all sources)."""
from setlist.pipeline.candidates import run

__all__ = ["run"]
