"""Seeded generator of realistic raw listening events (numpy, no Spark).

The model, calibrated on ``shared/REALISM.md`` through :class:`GeneratorConfig`:

* ``catalogue``: artists in genres, tracks in album order, Zipf-like popularity (artist
  popularity x rank within the artist), log-normal durations, and a fixed directed
  structure: each track's successors (the next album tracks, then genre neighbours) and
  each artist's similar artists;
* ``users``: log-normal activity, a Dirichlet taste over genres, favourite artists, a
  heavy rotation of core tracks (the source of repeats), an exploration propensity;
* ``sessions``: placed over the day by an hourly profile, each with one surface, platform,
  shuffle state, mood genre (radio: a seed artist) and its surface's mix of track sources;
* ``tracks``: per play a source (core, favourite, explore, taste, discovery, radio seed or
  similar artist, successor of the previous track); home discovers near-taste artists,
  now_playing follows successors, radio stays around its seed;
* ``skips``: a skip probability from the calibrated log-odds offsets (position, platform,
  surface, off-taste) plus a fit term (true affinity, fit to the session so far, following
  the previous track), base solved so the mean hits ``skip_rate_target``; skip times follow
  the published 5 / 10 / 30 s shares; saves rise with completion and affinity;
* ``days``: Spotify-export quirks: ``ts`` is when the play stopped, ``reason_start`` /
  ``reason_end`` as players log them, a ``skipped`` flag that sometimes disagrees;
* ``world``: :func:`true_affinity` / :func:`true_affinity_of`, the preference the plays were
  drawn from, for evaluation;
* ``stats``: :func:`realism_stats` and :func:`realism_report`.

The catalogue and users depend on the seed only; a day's plays on seed + date, drawn in
fixed blocks of ``users_per_chunk`` users, so memory stays bounded and the rows do not
depend on how a caller consumes the chunks.
"""
from setlist.generator.catalogue import Catalogue, build_catalogue
from setlist.generator.contract import COLUMNS
from setlist.generator.days import generate_day, iter_day_chunks
from setlist.generator.stats import realism_report, realism_stats
from setlist.generator.users import Users, build_users
from setlist.generator.world import World, build_world, true_affinity, true_affinity_of

__all__ = ["COLUMNS", "Catalogue", "Users", "World", "build_catalogue", "build_users", "build_world",
           "generate_day", "iter_day_chunks", "realism_report", "realism_stats", "true_affinity",
           "true_affinity_of"]
