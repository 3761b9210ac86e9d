"""Which track each play of a block's sessions is.

Every play draws a source from its session's ``source_cum``; each source picks a track
for all its plays at once. Only the successor source needs the previous track, so it is
resolved in one loop over position in session (numpy across sessions per position).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from setlist.config import GeneratorConfig
from setlist.generator.sampling import draw, draw_rows, pick_matching
from setlist.generator.sessions import NO_SEED, SOURCE, Sessions
from setlist.generator.world import World, is_known_artist


@dataclass(frozen=True)
class Plays:
    """One row per play, session by session in order: ``session`` indexes the block's
    sessions, ``position`` is 0-based in the session, ``source`` indexes ``SOURCES``."""
    session: np.ndarray
    position: np.ndarray
    user: np.ndarray
    track: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.session)


def _core(cfg, world, rng, user, session, sessions):
    rotation = np.arange(1, cfg.core_tracks + 1, dtype=float) ** -cfg.core_rotation_zipf
    rank = draw(np.cumsum(rotation) / rotation.sum(), rng.random(len(user)))
    return world.users.core_tracks[user, rank]


def _favourite(cfg, world, rng, user, session, sessions):
    """A favourite artist's track, in the session's mood genre when the user has one there."""
    n = len(user)
    favourites = world.users.favourite_artists[user]
    in_mood = world.catalogue.artist_genre[favourites] == sessions.mood[session][:, None]
    mood_pick, has_mood = pick_matching(in_mood, rng.random(n))
    any_pick = rng.integers(0, cfg.favourite_artists, n)
    use_mood = has_mood & (rng.random(n) < cfg.mood_stickiness)
    artist = favourites[np.arange(n), np.where(use_mood, mood_pick, any_pick)]
    return world.catalogue.tracks_by_artist.sample(artist, rng.random(n))


def _explore(cfg, world, rng, user, session, sessions):
    return draw(world.catalogue.popularity_cum, rng.random(len(user)))


def _taste(cfg, world, rng, user, session, sessions):
    n = len(user)
    genre = np.where(rng.random(n) < cfg.mood_stickiness, sessions.mood[session],
                     draw_rows(world.users.taste_cum[user], rng.random(n)))
    return world.catalogue.tracks_by_genre.sample(genre, rng.random(n))


def _discovery(cfg, world, rng, user, session, sessions):
    """A track of an artist new to the user (not a favourite, no core track), in the mood
    genre or one of the user's top genres: near taste, not known."""
    n, users, cat = len(user), world.users, world.catalogue
    top = users.top_genres[user, draw_rows(users.top_genre_cum[user], rng.random(n))]
    genre = np.where(rng.random(n) < cfg.mood_stickiness, sessions.mood[session], top)
    artist = cat.artists_by_genre.sample(genre, rng.random(n))
    # Popular artists of a user's genres are mostly known already, hence the redraws.
    for _ in range(cfg.discovery_redraws):
        known = np.flatnonzero(is_known_artist(world, user, artist))
        if len(known) == 0:
            break
        artist[known] = cat.artists_by_genre.sample(genre[known], rng.random(len(known)))
    return cat.tracks_by_artist.sample(artist, rng.random(n))


def _radio_seed(cfg, world, rng, user, session, sessions):
    return world.catalogue.tracks_by_artist.sample(sessions.seed_artist[session], rng.random(len(user)))


def _radio_similar(cfg, world, rng, user, session, sessions):
    cat = world.catalogue
    slot = rng.integers(0, cat.similar_artists.shape[1], len(user))
    artist = cat.similar_artists[sessions.seed_artist[session], slot]
    return cat.tracks_by_artist.sample(artist, rng.random(len(user)))


PICKERS = {"core": _core, "favourite": _favourite, "explore": _explore, "taste": _taste,
           "discovery": _discovery, "radio_seed": _radio_seed, "radio_similar": _radio_similar}


def _follow_successors(world: World, rng: np.random.Generator, track: np.ndarray, position: np.ndarray,
                       rows: np.ndarray) -> None:
    """Fill ``track[rows]`` with a successor of the previous play's track, position by position,
    so chains of successors (``rows`` never at position 0) follow each other."""
    cat = world.catalogue
    slot = draw(cat.successor_cum, rng.random(len(rows)))
    by_position = np.argsort(position[rows], kind="stable")
    rows, slot = rows[by_position], slot[by_position]
    bounds = np.flatnonzero(np.diff(position[rows])) + 1
    for at, slots in zip(np.split(rows, bounds), np.split(slot, bounds)):
        track[at] = cat.successors[track[at - 1], slots]


def choose_tracks(cfg: GeneratorConfig, world: World, sessions: Sessions, rng: np.random.Generator) -> Plays:
    """The plays of ``sessions`` (``sessions.length`` each) and the track of each."""
    n_s = len(sessions)
    session = np.repeat(np.arange(n_s), sessions.length)
    first = np.cumsum(sessions.length) - sessions.length
    position = np.arange(len(session)) - first[session]
    user = sessions.user[session]
    cum = sessions.source_cum[session]
    u = rng.random(len(session))
    # The first play has no previous track: it draws from the sources before the successor.
    opening = position == 0
    u[opening] *= cum[opening, SOURCE["successor"] - 1]
    source = draw_rows(cum, u)
    source[opening & (source == SOURCE["successor"])] = SOURCE["taste"]
    # A radio session opens on its seed.
    source[opening & (sessions.seed_artist[session] != NO_SEED)] = SOURCE["radio_seed"]
    track = np.zeros(len(session), dtype=np.int64)
    for name, pick in PICKERS.items():
        rows = np.flatnonzero(source == SOURCE[name])
        if len(rows):
            track[rows] = pick(cfg, world, rng, user[rows], session[rows], sessions)
    _follow_successors(world, rng, track, position, np.flatnonzero(source == SOURCE["successor"]))
    return Plays(session=session, position=position, user=user, track=track, source=source)
