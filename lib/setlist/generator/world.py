"""The world of one seed (catalogue and users) and the generator's own preference model.

:func:`true_affinity` is the ground truth the plays are drawn from (it lowers skips and
raises saves), kept aside so evaluation can compare a model's scores with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from setlist.config import GeneratorConfig
from setlist.generator.catalogue import Catalogue, build_catalogue
from setlist.generator.contract import TRACK_ID, USER_ID, parse_ids
from setlist.generator.users import Users, build_users


@dataclass(frozen=True)
class World:
    """Everything that is stable across days for one seed."""
    catalogue: Catalogue
    users: Users
    cfg: GeneratorConfig


# The last world built, by its config's JSON: a pipeline and its statistics share one copy.
_last_world: dict[str, World] = {}


def build_world(cfg: GeneratorConfig) -> World:
    """The world of ``cfg``, built once and kept for the last config asked for (callers and
    :func:`realism_stats` / :func:`true_affinity_of` share it rather than hold two copies).
    Treat its arrays as read-only."""
    key = cfg.model_dump_json()
    if key not in _last_world:
        catalogue = build_catalogue(cfg)
        world = World(catalogue=catalogue, users=build_users(cfg, catalogue), cfg=cfg)
        _last_world.clear()
        _last_world[key] = world
    return _last_world[key]


def is_favourite_artist(world: World, user_index: np.ndarray, artist_index: np.ndarray) -> np.ndarray:
    return (world.users.favourite_artists[user_index] == artist_index[:, None]).any(axis=1)


def is_core_track(world: World, user_index: np.ndarray, track_index: np.ndarray) -> np.ndarray:
    return (world.users.core_tracks[user_index] == track_index[:, None]).any(axis=1)


def is_known_artist(world: World, user_index: np.ndarray, artist_index: np.ndarray) -> np.ndarray:
    """The artist is one of the user's favourites or has one of their core tracks."""
    core_artists = world.catalogue.track_artist[world.users.core_tracks[user_index]]
    return (is_favourite_artist(world, user_index, artist_index)
            | (core_artists == artist_index[:, None]).any(axis=1))


def true_affinity(world: World, user_index: np.ndarray, track_index: np.ndarray) -> np.ndarray:
    """The generator's preference of each (user, track) pair, >= 0, higher is better.

    The user's taste for the track's genre relative to their strongest genre (in (0, 1]),
    plus ``affinity_favourite_bonus`` for a favourite artist and ``affinity_core_bonus`` for a
    core track. Skips fall and saves rise with it (``affinity_skip_logit``,
    ``save_affinity_logit``).
    """
    cfg, cat, users = world.cfg, world.catalogue, world.users
    user_index = np.asarray(user_index, dtype=np.int64)
    track_index = np.asarray(track_index, dtype=np.int64)
    taste = users.taste[user_index, cat.track_genre[track_index]] / users.taste[user_index].max(axis=1)
    favourite = is_favourite_artist(world, user_index, cat.track_artist[track_index])
    core = is_core_track(world, user_index, track_index)
    return (taste.astype(np.float64) + cfg.affinity_favourite_bonus * favourite
            + cfg.affinity_core_bonus * core)


def true_affinity_of(cfg: GeneratorConfig, user_ids, track_ids) -> np.ndarray:
    """:func:`true_affinity` by id (``u0000001``, ``t0000001``); NaN where an id is unknown
    to the world of ``cfg`` (built once per config, see :func:`build_world`)."""
    world = build_world(cfg)
    user = parse_ids(user_ids, USER_ID[0], cfg.n_users)
    track = parse_ids(track_ids, TRACK_ID[0], world.catalogue.n_tracks)
    if user.shape != track.shape:
        raise ValueError(f"user_ids and track_ids must have the same length, got {user.shape} and {track.shape}")
    known = (user >= 0) & (track >= 0)
    affinity = np.full(len(user), np.nan)
    affinity[known] = true_affinity(world, user[known], track[known])
    return affinity
