"""Whether a play ends early, when, and whether it is saved.

The skip log-odds add the calibrated offsets (position, platform, surface, off-taste, each
relative to ``skip_rate_target``) to a fit term (true affinity, fit to the session so far,
following the previous track as its successor). The fit term is centred within each
(surface, position) cell, so it moves skips between plays without moving those rates; the
base is then solved so the mean is the published rate.
"""
from __future__ import annotations

import numpy as np

from setlist.config import GeneratorConfig
from setlist.generator.contract import MS_PER_S
from setlist.generator.sampling import centred_within, draw, expit, logit, solve_base
from setlist.generator.sessions import Sessions
from setlist.generator.tracks import Plays
from setlist.generator.world import World

# Play-time marks of the published skip shares, in seconds.
SKIP_MARKS_S = (5, 10, 30)


def position_skip_rates(cfg: GeneratorConfig) -> np.ndarray:
    """Target skip rate per 0-based position up to the plateau (linear in between)."""
    return np.linspace(cfg.first_track_skip, cfg.plateau_skip, cfg.plateau_position)


def _label_offsets(labels: list[str], rates: dict[str, float], target: float) -> np.ndarray:
    return np.array([logit(rates[k]) - logit(target) if k in rates else 0.0 for k in labels])


def session_fit(sessions: Sessions, plays: Plays, genre: np.ndarray) -> np.ndarray:
    """Share of (the session's mood, its earlier plays) in each play's genre, in [0, 1]."""
    order = np.lexsort((plays.position, genre, plays.session))
    key_sess, key_genre = plays.session[order], genre[order]
    new_group = np.concatenate([[True], (key_sess[1:] != key_sess[:-1]) | (key_genre[1:] != key_genre[:-1])])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    earlier = np.empty(len(order), dtype=np.int64)
    earlier[order] = np.arange(len(order)) - group_start
    in_mood = genre == sessions.mood[plays.session]
    return (in_mood + earlier) / (1.0 + plays.position)


def follows_previous(world: World, plays: Plays) -> np.ndarray:
    """The play's track is one of the previous play's successors (same session)."""
    previous = np.concatenate([[0], plays.track[:-1]])
    hit = (world.catalogue.successors[previous] == plays.track[:, None]).any(axis=1)
    return hit & (plays.position > 0)


def ends_early(cfg: GeneratorConfig, world: World, sessions: Sessions, plays: Plays,
               affinity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cat, users = world.catalogue, world.users
    genre = cat.track_genre[plays.track]
    on_taste = users.taste[plays.user, genre] >= cfg.off_taste_weight
    surface = sessions.surface[plays.session]
    pos_off = logit(position_skip_rates(cfg)) - logit(cfg.skip_rate_target)
    pos_bucket = np.minimum(plays.position, len(pos_off) - 1)
    calibrated = (pos_off[pos_bucket]
                  + _label_offsets(sessions.platforms, cfg.platform_skip, cfg.skip_rate_target)[
                      sessions.platform[plays.session]]
                  + _label_offsets(sessions.surfaces, cfg.surface_skip, cfg.skip_rate_target)[surface]
                  + np.where(on_taste, 0.0, logit(cfg.skip_rate_target + cfg.off_taste_skip_boost)
                             - logit(cfg.skip_rate_target)))
    fit = (cfg.affinity_skip_logit * affinity
           + cfg.session_fit_skip_logit * session_fit(sessions, plays, genre)
           + cfg.successor_skip_logit * follows_previous(world, plays))
    cell = surface * len(pos_off) + pos_bucket
    offsets = calibrated + centred_within(fit, cell, len(sessions.surfaces) * len(pos_off))
    base = solve_base(offsets, cfg.skip_rate_target, cfg.calibration_steps)
    return rng.random(len(plays)) < expit(base + offsets)


def skip_time_ms(cfg: GeneratorConfig, rng: np.random.Generator, duration_ms: np.ndarray) -> np.ndarray:
    """Play time of a skipped play: the published 5/10/30 s shares, then a steady hazard."""
    marks = np.array(SKIP_MARKS_S, dtype=float) * MS_PER_S
    within = np.array([cfg.skip_within_5s, cfg.skip_within_10s, cfg.skip_within_30s])
    shares = np.diff(np.concatenate([[0.0], within, [cfg.skip_rate_target]]))
    bucket = draw(np.cumsum(shares / shares.sum()), rng.random(len(duration_ms)))
    lows = np.concatenate([[0.0], marks])
    highs = np.concatenate([marks, [np.inf]])
    u = rng.random(len(duration_ms))
    early = lows[bucket] + u * (np.minimum(highs[bucket], duration_ms) - lows[bucket])
    # After the last mark: exponential with mean late_skip_scale_s, truncated at the track end.
    scale = cfg.late_skip_scale_s * MS_PER_S
    room = np.maximum(duration_ms - marks[-1], 0.0)
    late = marks[-1] - scale * np.log1p(-u * -np.expm1(-room / scale))
    played = np.where(bucket == len(marks), late, early)
    return np.minimum(played.astype(np.int64), duration_ms - 1)


def is_saved(cfg: GeneratorConfig, world: World, plays: Plays, early: np.ndarray, affinity: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Likelier on completed, on-taste, high-affinity plays; the mean is ``save_rate``."""
    genre = world.catalogue.track_genre[plays.track]
    on_taste = world.users.taste[plays.user, genre] >= cfg.off_taste_weight
    offsets = (cfg.save_completed_logit * ~early + cfg.save_on_taste_logit * on_taste
               + cfg.save_affinity_logit * affinity)
    base = solve_base(offsets, cfg.save_rate, cfg.calibration_steps)
    return rng.random(len(plays)) < expit(base + offsets)
