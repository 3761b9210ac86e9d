"""Candidate sources: each turns interactions into (user_id, track_id, source, source_score, source_rank)."""
