"""Seeded generator of realistic raw listening events (numpy, no Spark).

The model, calibrated on ``shared/REALISM.md`` through :class:`GeneratorConfig`:

* a catalogue of artists in genres, several tracks each, with Zipf-like popularity
  (artist popularity x rank within the artist) and log-normal durations;
* users with log-normal activity, a Dirichlet taste over genres, favourite artists
  and a heavy-rotation set of core tracks (the source of repeats);
* sessions placed over the day by an hourly profile, each with one surface, platform
  and shuffle state; the plays of a session follow each other in time;
* a skip probability from log-odds offsets (position in session, platform, surface,
  off-taste) whose base is solved so the mean hits ``skip_rate_target``; the moment
  of a skip follows the published 5 / 10 / 30 s shares, then a steady hazard;
* Spotify-export quirks: ``ts`` is when the play stopped, ``reason_start`` /
  ``reason_end`` as players log them, a ``skipped`` flag that sometimes disagrees.

The catalogue and users depend on the seed only; a day's plays on seed + date, drawn
in fixed blocks of ``users_per_chunk`` users, so memory stays bounded and the rows
do not depend on how a caller consumes the chunks.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from setlist.config import GeneratorConfig

COLUMNS = ["event_id", "user_id", "track_id", "artist_id", "ts", "ms_played",
           "track_duration_ms", "reason_start", "reason_end", "surface", "platform",
           "shuffle", "skipped", "saved"]

# Identifier layouts of the raw-event contract (prefix, digits).
USER_ID = ("u", 7)
TRACK_ID = ("t", 7)
ARTIST_ID = ("a", 5)
BLOCK_DIGITS = 4
ROW_DIGITS = 8

# Independent random streams derived from the seed.
_CATALOGUE_STREAM, _USERS_STREAM, _DAY_STREAM = 0, 1, 2

MS_PER_S = 1000
S_PER_MIN = 60
S_PER_HOUR = 3600
MS_PER_DAY = 24 * S_PER_HOUR * MS_PER_S
HOURS_PER_DAY = 24
# Play-time marks of the published skip shares, in seconds.
SKIP_MARKS_S = (5, 10, 30)


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _solve_base(offsets: np.ndarray, target: float, steps: int) -> float:
    """Base log-odds b with mean(expit(b + offsets)) == target (Newton from logit(target))."""
    base = float(_logit(target))
    for _ in range(steps):
        p = _expit(base + offsets)
        slope = float(np.mean(p * (1.0 - p)))
        if slope <= 0.0:
            break
        base -= (float(np.mean(p)) - target) / slope
    return base


def _ids(prefix: str, width: int, numbers: np.ndarray) -> np.ndarray:
    """Object array of strings ``prefix`` + zero-padded ``numbers``."""
    return np.array([f"{prefix}{n:0{width}d}" for n in numbers.tolist()], dtype=object)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _text(*parts) -> np.ndarray:
    """Join constant strings and (n, w) digit matrices column-wise into an object array of str."""
    n = next(p.shape[0] for p in parts if isinstance(p, np.ndarray))
    cols = [np.broadcast_to(np.frombuffer(p.encode(), dtype=np.uint8), (n, len(p)))
            if isinstance(p, str) else p for p in parts]
    joined = np.ascontiguousarray(np.concatenate(cols, axis=1))
    return joined.view(f"S{joined.shape[1]}").ravel().astype(f"U{joined.shape[1]}").astype(object)


def _mix(mix: dict[str, float]) -> tuple[list[str], np.ndarray]:
    labels = list(mix)
    weights = np.array([mix[k] for k in labels], dtype=float)
    return labels, np.cumsum(weights / weights.sum())


def _draw(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


class _GroupSampler:
    """Draw an item of a given group with probability proportional to its weight.

    Items are laid out by group with one cumulative weight array, so a whole vector of
    (group, uniform) pairs is served by one ``searchsorted``.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int):
        self.order = np.argsort(groups, kind="stable")
        self.cum = np.cumsum(weights[self.order])
        counts = np.bincount(groups, minlength=n_groups)
        self.end = np.cumsum(counts)
        self.start = self.end - counts
        cum0 = np.concatenate([[0.0], self.cum])
        self.base = cum0[self.start]
        self.total = cum0[self.end] - self.base

    def sample(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.cum, self.base[groups] + u * self.total[groups], side="right")
        return self.order[np.clip(pos, self.start[groups], self.end[groups] - 1)]


@dataclass(frozen=True)
class Catalogue:
    artist_genre: np.ndarray
    track_artist: np.ndarray
    track_genre: np.ndarray
    track_weight: np.ndarray
    track_duration_ms: np.ndarray
    artist_ids: np.ndarray
    track_ids: np.ndarray
    tracks_by_genre: _GroupSampler
    tracks_by_artist: _GroupSampler
    artists_by_genre: _GroupSampler
    popularity_cum: np.ndarray

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)


@dataclass(frozen=True)
class Users:
    activity: np.ndarray
    taste: np.ndarray
    taste_cum: np.ndarray
    favourite_artists: np.ndarray
    core_tracks: np.ndarray
    user_ids: np.ndarray


@dataclass(frozen=True)
class World:
    """Everything that is stable across days for one seed."""
    catalogue: Catalogue
    users: Users


def build_catalogue(cfg: GeneratorConfig) -> Catalogue:
    rng = np.random.default_rng([cfg.seed, _CATALOGUE_STREAM])
    n_artists = cfg.n_artists
    # Round-robin then shuffled, so no genre is empty.
    artist_genre = rng.permutation(np.arange(n_artists) % cfg.n_genres)
    artist_rank = rng.permutation(n_artists) + 1
    artist_pop = artist_rank.astype(float) ** -cfg.track_popularity_zipf
    tracks_each = 1 + rng.poisson(max(cfg.tracks_per_artist_mean - 1.0, 0.0), n_artists)
    track_artist = np.repeat(np.arange(n_artists), tracks_each)
    first_track = np.cumsum(tracks_each) - tracks_each
    rank_in_artist = np.arange(len(track_artist)) - np.repeat(first_track, tracks_each) + 1
    within = rank_in_artist.astype(float) ** -cfg.track_popularity_zipf
    track_weight = artist_pop[track_artist] * within
    sigma = cfg.track_duration_sigma
    duration_s = rng.lognormal(np.log(cfg.track_duration_mean_s) - sigma ** 2 / 2, sigma,
                               len(track_artist))
    duration_ms = (np.clip(duration_s, cfg.track_duration_min_s, cfg.track_duration_max_s)
                   * MS_PER_S).astype(np.int64)
    track_genre = artist_genre[track_artist]
    return Catalogue(
        artist_genre=artist_genre, track_artist=track_artist, track_genre=track_genre,
        track_weight=track_weight, track_duration_ms=duration_ms,
        artist_ids=_ids(*ARTIST_ID, np.arange(n_artists)),
        track_ids=_ids(*TRACK_ID, np.arange(len(track_artist))),
        tracks_by_genre=_GroupSampler(track_genre, track_weight, cfg.n_genres),
        tracks_by_artist=_GroupSampler(track_artist, within, n_artists),
        artists_by_genre=_GroupSampler(artist_genre, artist_pop, cfg.n_genres),
        popularity_cum=np.cumsum(track_weight) / track_weight.sum())


def _genres_by_taste(taste_cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Genre per row of ``taste_cum`` (n, G) for uniforms ``u`` of shape (n, k) or (n,)."""
    if u.ndim == 1:
        return np.minimum((taste_cum < u[:, None]).sum(axis=1), taste_cum.shape[1] - 1)
    return np.minimum((taste_cum[:, None, :] < u[:, :, None]).sum(axis=2), taste_cum.shape[1] - 1)


def _build_user_block(cfg: GeneratorConfig, catalogue: Catalogue, block: int, n: int) -> Users:
    rng = np.random.default_rng([cfg.seed, _USERS_STREAM, block])
    sigma = cfg.activity_sigma
    activity = rng.lognormal(np.log(cfg.sessions_per_user_day) - sigma ** 2 / 2, sigma, n)
    taste = rng.dirichlet(np.full(cfg.n_genres, cfg.genre_concentration), n)
    taste_cum = np.cumsum(taste, axis=1)
    fav_genre = _genres_by_taste(taste_cum, rng.random((n, cfg.favourite_artists)))
    favourite_artists = catalogue.artists_by_genre.sample(
        fav_genre.ravel(), rng.random(fav_genre.size)).reshape(fav_genre.shape)
    shape = (n, cfg.core_tracks)
    from_fav = rng.random(shape) < cfg.core_from_favourites
    fav_pick = favourite_artists[np.arange(n)[:, None],
                                 rng.integers(0, cfg.favourite_artists, shape)]
    fav_track = catalogue.tracks_by_artist.sample(fav_pick.ravel(), rng.random(fav_pick.size))
    genre_track = catalogue.tracks_by_genre.sample(
        _genres_by_taste(taste_cum, rng.random(shape)).ravel(), rng.random(fav_pick.size))
    core_tracks = np.where(from_fav.ravel(), fav_track, genre_track).reshape(shape)
    return Users(activity=activity, taste=taste.astype(np.float32),
                 taste_cum=taste_cum.astype(np.float32),
                 favourite_artists=favourite_artists.astype(np.int32),
                 core_tracks=core_tracks.astype(np.int32), user_ids=np.empty(0, dtype=object))


def build_users(cfg: GeneratorConfig, catalogue: Catalogue) -> Users:
    """Users drawn in blocks of ``users_per_chunk`` (bounded temporaries), compact dtypes."""
    blocks = [_build_user_block(cfg, catalogue, b, min(cfg.users_per_chunk, cfg.n_users - lo))
              for b, lo in enumerate(range(0, cfg.n_users, cfg.users_per_chunk))]
    return Users(**{field: np.concatenate([getattr(b, field) for b in blocks])
                    for field in ("activity", "taste", "taste_cum", "favourite_artists",
                                  "core_tracks")},
                 user_ids=_ids(*USER_ID, np.arange(cfg.n_users)))


def build_world(cfg: GeneratorConfig) -> World:
    catalogue = build_catalogue(cfg)
    return World(catalogue=catalogue, users=build_users(cfg, catalogue))


def _day_start(ds: str) -> dt.date:
    try:
        return dt.date.fromisoformat(ds)
    except ValueError:
        raise ValueError(f"ds {ds!r}: expected a date as yyyy-MM-dd") from None


def _position_offsets(cfg: GeneratorConfig) -> np.ndarray:
    """Log-odds offset per 0-based position, up to the plateau, relative to the target."""
    steps = np.linspace(cfg.first_track_skip, cfg.plateau_skip, cfg.plateau_position)
    return _logit(steps) - _logit(cfg.skip_rate_target)


def _label_offsets(labels: list[str], rates: dict[str, float], target: float) -> np.ndarray:
    return np.array([_logit(rates[k]) - _logit(target) if k in rates else 0.0 for k in labels])


def _skip_time_ms(cfg: GeneratorConfig, rng: np.random.Generator,
                  duration_ms: np.ndarray) -> np.ndarray:
    """Play time of a skipped play: the published 5/10/30 s shares, then a steady hazard."""
    marks = np.array(SKIP_MARKS_S, dtype=float) * MS_PER_S
    within = np.array([cfg.skip_within_5s, cfg.skip_within_10s, cfg.skip_within_30s])
    shares = np.diff(np.concatenate([[0.0], within, [cfg.skip_rate_target]]))
    bucket = _draw(np.cumsum(shares / shares.sum()), rng.random(len(duration_ms)))
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


def _block_events(cfg: GeneratorConfig, world: World, day: dt.date, block: int) -> pd.DataFrame:
    cat, users = world.catalogue, world.users
    lo = block * cfg.users_per_chunk
    hi = min(lo + cfg.users_per_chunk, cfg.n_users)
    rng = np.random.default_rng([cfg.seed, _DAY_STREAM, day.toordinal(), block])

    # Sessions, sorted by user then start time.
    n_sessions = rng.poisson(users.activity[lo:hi])
    sess_user = np.repeat(np.arange(lo, hi), n_sessions)
    n_s = len(sess_user)
    hour_cum = np.cumsum(cfg.hourly_profile) / np.sum(cfg.hourly_profile)
    start_ms = ((_draw(hour_cum, rng.random(n_s)) + rng.random(n_s)) * S_PER_HOUR * MS_PER_S
                ).astype(np.int64)
    order = np.lexsort((start_ms, sess_user))
    sess_user, start_ms = sess_user[order], start_ms[order]
    surfaces, surface_cum = _mix(cfg.surface_mix)
    platforms, platform_cum = _mix(cfg.platform_mix)
    sess_surface = _draw(surface_cum, rng.random(n_s))
    sess_platform = _draw(platform_cum, rng.random(n_s))
    sess_shuffle = rng.random(n_s) < cfg.shuffle_share
    sess_len = rng.geometric(1.0 / cfg.session_length_mean, n_s)

    # Plays.
    play_sess = np.repeat(np.arange(n_s), sess_len)
    n_p = len(play_sess)
    sess_first = np.cumsum(sess_len) - sess_len
    position = np.arange(n_p) - sess_first[play_sess]
    user = sess_user[play_sess]

    source = rng.random(n_p)
    core_cut = cfg.repeat_share
    fav_cut = core_cut + cfg.favourite_artist_share
    explore_cut = fav_cut + cfg.explore_share
    rotation = np.arange(1, cfg.core_tracks + 1, dtype=float) ** -cfg.core_rotation_zipf
    core_rank = _draw(np.cumsum(rotation) / rotation.sum(), rng.random(n_p))
    core = users.core_tracks[user, core_rank]
    fav_artist = users.favourite_artists[user, rng.integers(0, cfg.favourite_artists, n_p)]
    fav = cat.tracks_by_artist.sample(fav_artist, rng.random(n_p))
    explore = _draw(cat.popularity_cum, rng.random(n_p))
    genre = _genres_by_taste(users.taste_cum[user], rng.random(n_p))
    by_taste = cat.tracks_by_genre.sample(genre, rng.random(n_p))
    track = np.select([source < core_cut, source < fav_cut, source < explore_cut],
                      [core, fav, explore], by_taste)
    on_taste = users.taste[user, cat.track_genre[track]] >= cfg.off_taste_weight
    duration = cat.track_duration_ms[track]

    # Skips: log-odds offsets, base solved so the mean is the published rate.
    pos_off = _position_offsets(cfg)
    offsets = (pos_off[np.minimum(position, len(pos_off) - 1)]
               + _label_offsets(platforms, cfg.platform_skip, cfg.skip_rate_target)[sess_platform[play_sess]]
               + _label_offsets(surfaces, cfg.surface_skip, cfg.skip_rate_target)[sess_surface[play_sess]]
               + np.where(on_taste, 0.0, _logit(cfg.skip_rate_target + cfg.off_taste_skip_boost)
                          - _logit(cfg.skip_rate_target)))
    base = _solve_base(offsets, cfg.skip_rate_target, cfg.calibration_steps)
    early = rng.random(n_p) < _expit(base + offsets)
    ms_played = np.where(early, _skip_time_ms(cfg, rng, duration), duration)

    # Times: plays back to back within a session; a user's sessions never overlap and
    # are at least min_session_gap_minutes apart (pushed later when needed).
    gaps = (rng.exponential(cfg.inter_play_gap_s_mean, n_p) * MS_PER_S).astype(np.int64)
    elapsed = np.cumsum(ms_played + gaps)
    sess_elapsed_before = np.concatenate([[0], elapsed])[sess_first]
    stop_in_session = elapsed - sess_elapsed_before[play_sess]
    sess_span = np.bincount(play_sess, weights=ms_played + gaps, minlength=n_s).astype(np.int64)
    span = sess_span + int(cfg.min_session_gap_minutes * S_PER_MIN * MS_PER_S)
    before = np.cumsum(span) - span
    pushed = pd.Series(start_ms - before).groupby(sess_user).cummax().to_numpy()
    sess_start = before + pushed
    stop_ms = sess_start[play_sess] + stop_in_session
    keep = stop_ms < MS_PER_DAY

    # Saves: likelier on completed, on-taste plays.
    save_off = cfg.save_completed_logit * ~early + cfg.save_on_taste_logit * on_taste
    save_base = _solve_base(save_off, cfg.save_rate, cfg.calibration_steps)
    saved = rng.random(n_p) < _expit(save_base + save_off)
    skipped = early ^ (rng.random(n_p) < cfg.skipped_flag_disagreement)

    # reason_end from the skip / done mixes; reason_start carries the previous end over.
    skip_labels, skip_cum = _mix(cfg.skip_reason_mix)
    done_labels, done_cum = _mix(cfg.done_reason_mix)
    start_labels, start_cum = _mix(cfg.start_reason_mix)
    vocab = list(dict.fromkeys(skip_labels + done_labels + start_labels + cfg.carry_over_reasons))
    code = {label: i for i, label in enumerate(vocab)}
    u_end = rng.random(n_p)
    end_code = np.where(early,
                        np.array([code[k] for k in skip_labels])[_draw(skip_cum, u_end)],
                        np.array([code[k] for k in done_labels])[_draw(done_cum, u_end)])
    fresh = np.array([code[k] for k in start_labels])[_draw(start_cum, rng.random(n_p))]
    prev_end = np.concatenate([[0], end_code[:-1]])
    carries = np.isin(prev_end, [code[k] for k in cfg.carry_over_reasons]) & (position > 0)
    start_code = np.where(carries, prev_end, fresh)

    idx = np.flatnonzero(keep)
    user, track, stop_ms = user[idx], track[idx], stop_ms[idx]
    play_sess = play_sess[idx]
    vocab_arr = np.array(vocab, dtype=object)
    stop_s, ms = np.divmod(stop_ms, MS_PER_S)
    hh, rem = np.divmod(stop_s, S_PER_HOUR)
    mm, ss = np.divmod(rem, S_PER_MIN)
    day_text = day.isoformat()
    return pd.DataFrame({
        "event_id": _text(f"e{day_text.replace('-', '')}-", _digits(np.full(len(idx), block), BLOCK_DIGITS),
                          "-", _digits(idx, ROW_DIGITS)),
        "user_id": users.user_ids[user],
        "track_id": cat.track_ids[track],
        "artist_id": cat.artist_ids[cat.track_artist[track]],
        "ts": _text(f"{day_text}T", _digits(hh, 2), ":", _digits(mm, 2), ":", _digits(ss, 2),
                    ".", _digits(ms, 3), "Z"),
        "ms_played": ms_played[idx],
        "track_duration_ms": duration[idx],
        "reason_start": vocab_arr[start_code[idx]],
        "reason_end": vocab_arr[end_code[idx]],
        "surface": np.array(surfaces, dtype=object)[sess_surface[play_sess]],
        "platform": np.array(platforms, dtype=object)[sess_platform[play_sess]],
        "shuffle": sess_shuffle[play_sess],
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


# --- Realism statistics --------------------------------------------------------------

def _session_positions(events: pd.DataFrame, gap_ms: float) -> pd.DataFrame:
    """Events sorted by (user, ts) with a 1-based ``position`` in session.

    A session breaks when a play starts (ts - ms_played) more than ``gap_ms`` after the
    previous play of the same user stopped.
    """
    stop = pd.to_datetime(events["ts"], utc=True, format="ISO8601")
    frame = events.assign(_stop=stop).sort_values(["user_id", "_stop"], kind="stable")
    stop_ms = frame["_stop"].astype("int64").to_numpy() // 1_000_000
    start_ms = stop_ms - frame["ms_played"].to_numpy()
    same_user = frame["user_id"].to_numpy()[1:] == frame["user_id"].to_numpy()[:-1]
    new_session = np.concatenate([[True], ~same_user | (start_ms[1:] - stop_ms[:-1] > gap_ms)])
    session = np.cumsum(new_session)
    first = np.flatnonzero(new_session)
    position = np.arange(len(frame)) - first[session - 1] + 1
    return frame.assign(position=position, _day=frame["_stop"].dt.date)


def realism_stats(events: pd.DataFrame, cfg: GeneratorConfig | None = None) -> dict[str, float]:
    """The REALISM.md statistics of raw events.

    A play "ends early" when ``ms_played < track_duration_ms``; skip rates below use that
    (not the ``skipped`` flag, whose disagreement is reported separately). Sessions split
    at a gap of more than ``cfg.stats_session_gap_minutes``. A repeat is a play of a
    (user, track) already played earlier the same UTC day.
    """
    cfg = cfg or GeneratorConfig()
    frame = _session_positions(events, cfg.stats_session_gap_minutes * S_PER_MIN * MS_PER_S)
    early = (frame["ms_played"] < frame["track_duration_ms"]).to_numpy()
    ms = frame["ms_played"].to_numpy()
    stats: dict[str, float] = {"plays": float(len(frame)), "early_end_share": float(early.mean())}
    for mark in SKIP_MARKS_S:
        stats[f"ended_within_{mark}s"] = float((early & (ms < mark * MS_PER_S)).mean())
    hours = ms.sum() / (S_PER_HOUR * MS_PER_S)
    stats["skips_per_hour"] = float(early.sum() / hours) if hours > 0 else float("nan")
    frame = frame.assign(_early=early)
    for platform, rate in frame.groupby("platform")["_early"].mean().items():
        stats[f"skip_rate_{platform}"] = float(rate)
    plateau = cfg.plateau_position
    pos_bucket = np.minimum(frame["position"].to_numpy(), plateau)
    for pos, rate in frame.groupby(pos_bucket)["_early"].mean().items():
        suffix = f"{pos}plus" if pos == plateau else str(pos)
        stats[f"skip_rate_position_{suffix}"] = float(rate)
    for surface, rate in frame.groupby("surface")["_early"].mean().items():
        stats[f"skip_rate_surface_{surface}"] = float(rate)
    stats["repeat_share"] = float(frame.duplicated(["user_id", "_day", "track_id"]).mean())
    stats["saves_per_stream"] = float(frame["saved"].mean())
    stats["skipped_flag_disagreement"] = float((frame["skipped"].to_numpy() != early).mean())
    counts = frame["track_id"].value_counts().to_numpy()
    top = max(1, int(np.ceil(len(counts) / 100)))
    stats["top_1pct_played_tracks_share"] = float(counts[:top].sum() / counts.sum())
    return stats


def _targets(cfg: GeneratorConfig) -> dict[str, str]:
    pos_rates = np.linspace(cfg.first_track_skip, cfg.plateau_skip, cfg.plateau_position)
    targets = {
        "early_end_share": f"{cfg.skip_rate_target:.3f}",
        "ended_within_5s": f"{cfg.skip_within_5s:.3f}",
        "ended_within_10s": f"{cfg.skip_within_10s:.3f}",
        "ended_within_30s": f"{cfg.skip_within_30s:.3f}",
        "skips_per_hour": f"{cfg.skips_per_hour_target:.1f}",
        "repeat_share": f"{cfg.repeat_share_range[0]:.2f}-{cfg.repeat_share_range[1]:.2f}",
        "saves_per_stream": f"{cfg.save_rate:.3f}",
        "skipped_flag_disagreement": f"{cfg.skipped_flag_disagreement:.3f}",
    }
    for platform, rate in cfg.platform_skip.items():
        targets[f"skip_rate_{platform}"] = f"{rate:.3f}"
    for i, rate in enumerate(pos_rates, start=1):
        suffix = f"{i}plus" if i == cfg.plateau_position else str(i)
        targets[f"skip_rate_position_{suffix}"] = f"{rate:.3f}"
    for surface, rate in cfg.surface_skip.items():
        targets[f"skip_rate_surface_{surface}"] = f"{rate:.3f}"
    return targets


def realism_report(stats: dict[str, float], cfg: GeneratorConfig) -> str:
    """A table of each statistic beside its published target ('-' where none is published)."""
    targets = _targets(cfg)
    width = max(len(k) for k in stats)
    lines = [f"{'statistic':<{width}}  {'generated':>10}  {'target':>10}"]
    for key, value in stats.items():
        shown = f"{value:,.0f}" if key == "plays" else f"{value:.3f}"
        lines.append(f"{key:<{width}}  {shown:>10}  {targets.get(key, '-'):>10}")
    return "\n".join(lines)
