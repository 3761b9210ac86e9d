"""A day of raw events, block by block of ``users_per_chunk`` users.

A block's plays come from one random stream seeded by (seed, day, block), so the rows do
not depend on how a caller consumes the chunks, and memory is bounded by one block.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import numpy as np
import pandas as pd

from setlist.config import GeneratorConfig
from setlist.generator.contract import (BLOCK_DIGITS, COLUMNS, MS_PER_DAY, MS_PER_S, ROW_DIGITS, S_PER_HOUR,
                                        S_PER_MIN, digits, text)
from setlist.generator.sampling import draw, mix
from setlist.generator.sessions import draw_sessions
from setlist.generator.skips import ends_early, is_saved, skip_time_ms
from setlist.generator.tracks import choose_tracks
from setlist.generator.world import World, build_world, true_affinity

DAY_STREAM = 2


def _day_start(ds: str) -> dt.date:
    try:
        return dt.date.fromisoformat(ds)
    except ValueError:
        raise ValueError(f"ds {ds!r}: expected a date as yyyy-MM-dd") from None


def _stop_times(cfg: GeneratorConfig, rng: np.random.Generator, sessions, plays,
                ms_played: np.ndarray) -> np.ndarray:
    """Stop time (ms into the day) of each play. Plays run back to back within a session; a
    user's sessions never overlap and are at least min_session_gap_minutes apart (pushed
    later when needed)."""
    n_s = len(sessions)
    first = np.cumsum(sessions.length) - sessions.length
    gaps = (rng.exponential(cfg.inter_play_gap_s_mean, len(plays)) * MS_PER_S).astype(np.int64)
    elapsed = np.cumsum(ms_played + gaps)
    elapsed_before = np.concatenate([[0], elapsed])[first]
    stop_in_session = elapsed - elapsed_before[plays.session]
    sess_span = np.bincount(plays.session, weights=ms_played + gaps, minlength=n_s).astype(np.int64)
    span = sess_span + int(cfg.min_session_gap_minutes * S_PER_MIN * MS_PER_S)
    before = np.cumsum(span) - span
    pushed = pd.Series(sessions.start_ms - before).groupby(sessions.user).cummax().to_numpy()
    return (before + pushed)[plays.session] + stop_in_session


def _reasons(cfg: GeneratorConfig, rng: np.random.Generator, early: np.ndarray,
             position: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vocabulary, reason_start codes, reason_end codes): reason_end from the skip / done
    mixes; reason_start carries the previous end over when it is a carry-over reason."""
    skip_labels, skip_cum = mix(cfg.skip_reason_mix)
    done_labels, done_cum = mix(cfg.done_reason_mix)
    start_labels, start_cum = mix(cfg.start_reason_mix)
    vocab = list(dict.fromkeys(skip_labels + done_labels + start_labels + cfg.carry_over_reasons))
    code = {label: i for i, label in enumerate(vocab)}
    u_end = rng.random(len(early))
    end_code = np.where(early,
                        np.array([code[k] for k in skip_labels])[draw(skip_cum, u_end)],
                        np.array([code[k] for k in done_labels])[draw(done_cum, u_end)])
    fresh = np.array([code[k] for k in start_labels])[draw(start_cum, rng.random(len(early)))]
    prev_end = np.concatenate([[0], end_code[:-1]])
    carries = np.isin(prev_end, [code[k] for k in cfg.carry_over_reasons]) & (position > 0)
    return np.array(vocab, dtype=object), np.where(carries, prev_end, fresh), end_code


def _block_events(cfg: GeneratorConfig, world: World, day: dt.date, block: int) -> pd.DataFrame:
    cat = world.catalogue
    lo = block * cfg.users_per_chunk
    hi = min(lo + cfg.users_per_chunk, cfg.n_users)
    rng = np.random.default_rng([cfg.seed, DAY_STREAM, day.toordinal(), block])
    sessions = draw_sessions(cfg, world, rng, lo, hi)
    plays = choose_tracks(cfg, world, sessions, rng)
    duration = cat.track_duration_ms[plays.track]
    affinity = true_affinity(world, plays.user, plays.track)
    early = ends_early(cfg, world, sessions, plays, affinity, rng)
    ms_played = np.where(early, skip_time_ms(cfg, rng, duration), duration)
    stop_ms = _stop_times(cfg, rng, sessions, plays, ms_played)
    saved = is_saved(cfg, world, plays, early, affinity, rng)
    skipped = early ^ (rng.random(len(plays)) < cfg.skipped_flag_disagreement)
    vocab, start_code, end_code = _reasons(cfg, rng, early, plays.position)

    idx = np.flatnonzero(stop_ms < MS_PER_DAY)
    track, stop_ms, session = plays.track[idx], stop_ms[idx], plays.session[idx]
    stop_s, ms = np.divmod(stop_ms, MS_PER_S)
    hh, rem = np.divmod(stop_s, S_PER_HOUR)
    mm, ss = np.divmod(rem, S_PER_MIN)
    day_text = day.isoformat()
    return pd.DataFrame({
        "event_id": text(f"e{day_text.replace('-', '')}-", digits(np.full(len(idx), block), BLOCK_DIGITS),
                         "-", digits(idx, ROW_DIGITS)),
        "user_id": world.users.user_ids[plays.user[idx]],
        "track_id": cat.track_ids[track],
        "artist_id": cat.artist_ids[cat.track_artist[track]],
        "ts": text(f"{day_text}T", digits(hh, 2), ":", digits(mm, 2), ":", digits(ss, 2),
                   ".", digits(ms, 3), "Z"),
        "ms_played": ms_played[idx],
        "track_duration_ms": duration[idx],
        "reason_start": vocab[start_code[idx]],
        "reason_end": vocab[end_code[idx]],
        "surface": np.array(sessions.surfaces, dtype=object)[sessions.surface[session]],
        "platform": np.array(sessions.platforms, dtype=object)[sessions.platform[session]],
        "shuffle": sessions.shuffle[session],
        "skipped": skipped[idx],
        "saved": saved[idx],
    }, columns=COLUMNS)


def iter_day_chunks(cfg: GeneratorConfig, ds: str, world: World | None = None) -> Iterator[pd.DataFrame]:
    """The events of day ``ds``, one frame per block of ``cfg.users_per_chunk`` users.

    Concatenated, the chunks equal :func:`generate_day`. Pass a prebuilt ``world``
    (:func:`build_world`) to generate several days without rebuilding it.
    """
    day = _day_start(ds)
    world = world or build_world(cfg)
    n_blocks = -(-cfg.n_users // cfg.users_per_chunk)
    for block in range(n_blocks):
        yield _block_events(cfg, world, day, block)


def generate_day(cfg: GeneratorConfig, ds: str, world: World | None = None) -> pd.DataFrame:
    """All raw events of day ``ds`` (columns :data:`COLUMNS`), deterministic for (cfg, ds).

    ``ts`` is when a play stopped, inside [ds 00:00, ds+1 00:00) UTC; ``ms_played`` <=
    ``track_duration_ms``; ``event_id`` is unique across days.
    """
    return pd.concat(list(iter_day_chunks(cfg, ds, world)), ignore_index=True)
