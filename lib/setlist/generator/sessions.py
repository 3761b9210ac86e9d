"""Sessions of one block of users on one day: when, where (surface, platform), how long, in
which mood genre, from which radio seed, and the chance of each track source.

A session's surface decides its track sources: its own ``surface_sources`` shares
(successor, discovery, radio_seed, radio_similar), the rest split by the base mix (core
rotation, favourite artists, global popularity, taste). A user's exploration propensity
scales the discovery and popularity shares.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from setlist.config import GeneratorConfig
from setlist.generator.contract import MS_PER_S, S_PER_HOUR
from setlist.generator.sampling import draw, draw_rows, mix
from setlist.generator.world import World

# Track sources, in the column order of Sessions.source_cum. The successor comes last: the
# first play of a session, which has no previous track, draws from the columns before it.
BASE_SOURCES = ("core", "favourite", "explore", "taste")
SOURCES = (BASE_SOURCES + tuple(s for s in GeneratorConfig.SURFACE_SOURCES if s != "successor")
           + ("successor",))
SOURCE = {name: i for i, name in enumerate(SOURCES)}
RADIO_SOURCES = ("radio_seed", "radio_similar")
NO_SEED = -1


@dataclass(frozen=True)
class Sessions:
    """One row per session, sorted by user then requested start.

    ``surface`` / ``platform`` index ``surfaces`` / ``platforms``; ``mood`` is a genre;
    ``seed_artist`` is the radio seed (``NO_SEED`` where the surface has no radio sources);
    ``source_cum`` (n, len(SOURCES)) the cumulative chance of each track source.
    """
    user: np.ndarray
    start_ms: np.ndarray
    surface: np.ndarray
    platform: np.ndarray
    shuffle: np.ndarray
    length: np.ndarray
    mood: np.ndarray
    seed_artist: np.ndarray
    source_cum: np.ndarray
    surfaces: list[str]
    platforms: list[str]

    def __len__(self) -> int:
        return len(self.user)


def _source_shares(cfg: GeneratorConfig, world: World, surfaces: list[str], surface: np.ndarray,
                   user: np.ndarray) -> np.ndarray:
    """(n, len(SOURCES)) chance of each source per session."""
    own = np.array([[cfg.surface_sources.get(s, {}).get(src, 0.0) for src in SOURCES[len(BASE_SOURCES):]]
                    for s in surfaces]).reshape(len(surfaces), -1)[surface]
    boost = world.users.exploration[user].astype(np.float64) / cfg.exploration_mean
    disc = SOURCE["discovery"] - len(BASE_SOURCES)
    others = own.sum(axis=1) - own[:, disc]
    own[:, disc] = np.minimum(own[:, disc] * boost, 1.0 - others)
    # The base mix is clipped in order (core first), so any shares in [0, 1] make a mix.
    core = np.full(len(user), min(cfg.repeat_share, 1.0))
    favourite = np.minimum(cfg.favourite_artist_share, 1.0 - core)
    explore = np.minimum(cfg.explore_share * boost, 1.0 - core - favourite)
    taste = 1.0 - core - favourite - explore
    base = np.stack([core, favourite, explore, taste], axis=1) * (1.0 - own.sum(axis=1))[:, None]
    return np.concatenate([base, own], axis=1)


def _radio_seeds(cfg: GeneratorConfig, world: World, rng: np.random.Generator, user: np.ndarray,
                 mood: np.ndarray, has_radio: np.ndarray) -> np.ndarray:
    """A favourite artist (radio_seed_favourite_share) or a popular artist of the mood genre."""
    n = len(user)
    favourite = world.users.favourite_artists[user, rng.integers(0, cfg.favourite_artists, n)]
    in_mood = world.catalogue.artists_by_genre.sample(mood, rng.random(n))
    seed = np.where(rng.random(n) < cfg.radio_seed_favourite_share, favourite, in_mood)
    return np.where(has_radio, seed, NO_SEED)


def draw_sessions(cfg: GeneratorConfig, world: World, rng: np.random.Generator, lo: int, hi: int) -> Sessions:
    """The sessions of users ``lo`` to ``hi - 1`` for one day, drawn from ``rng``."""
    users = world.users
    n_sessions = rng.poisson(users.activity[lo:hi])
    user = np.repeat(np.arange(lo, hi), n_sessions)
    n_s = len(user)
    hour_cum = np.cumsum(cfg.hourly_profile) / np.sum(cfg.hourly_profile)
    start_ms = ((draw(hour_cum, rng.random(n_s)) + rng.random(n_s)) * S_PER_HOUR * MS_PER_S).astype(np.int64)
    order = np.lexsort((start_ms, user))
    user, start_ms = user[order], start_ms[order]
    surfaces, surface_cum = mix(cfg.surface_mix)
    platforms, platform_cum = mix(cfg.platform_mix)
    surface = draw(surface_cum, rng.random(n_s))
    platform = draw(platform_cum, rng.random(n_s))
    shuffle = rng.random(n_s) < cfg.shuffle_share
    length = rng.geometric(1.0 / cfg.session_length_mean, n_s)
    mood = draw_rows(users.taste_cum[user], rng.random(n_s))
    source_shares = _source_shares(cfg, world, surfaces, surface, user)
    has_radio = source_shares[:, [SOURCE[s] for s in RADIO_SOURCES]].sum(axis=1) > 0
    seed_artist = _radio_seeds(cfg, world, rng, user, mood, has_radio)
    # A radio session plays in its seed's genre.
    mood = np.where(has_radio, world.catalogue.artist_genre[np.maximum(seed_artist, 0)], mood)
    return Sessions(user=user, start_ms=start_ms, surface=surface, platform=platform, shuffle=shuffle,
                    length=length, mood=mood, seed_artist=seed_artist,
                    source_cum=np.cumsum(source_shares, axis=1), surfaces=surfaces, platforms=platforms)
