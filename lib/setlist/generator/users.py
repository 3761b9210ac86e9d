"""Users: activity, genre taste, favourite artists, heavy rotation, exploration propensity.

Drawn in blocks of ``users_per_chunk`` users, each block from its own random stream, so the
temporaries stay bounded and a user does not depend on how many users follow.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from setlist.config import GeneratorConfig
from setlist.generator.catalogue import Catalogue
from setlist.generator.contract import USER_ID, format_ids
from setlist.generator.sampling import draw_rows

USERS_STREAM = 1


@dataclass(frozen=True)
class Users:
    """Per user (row ``i`` is ``user_ids[i]``): ``taste`` over genres and its row-wise
    cumulative ``taste_cum``; ``favourite_artists`` (n, favourite_artists); ``core_tracks``
    (n, core_tracks) in rotation order; ``exploration`` in (0, 1); ``top_genres`` (n, k), the
    user's k strongest genres, with ``top_genre_cum`` their cumulative renormalised taste."""
    activity: np.ndarray
    taste: np.ndarray
    taste_cum: np.ndarray
    favourite_artists: np.ndarray
    core_tracks: np.ndarray
    exploration: np.ndarray
    top_genres: np.ndarray
    top_genre_cum: np.ndarray
    user_ids: np.ndarray


def _exploration(cfg: GeneratorConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    mean, concentration = cfg.exploration_mean, cfg.exploration_concentration
    return rng.beta(mean * concentration, (1.0 - mean) * concentration, n)


def _build_user_block(cfg: GeneratorConfig, catalogue: Catalogue, block: int, n: int) -> Users:
    rng = np.random.default_rng([cfg.seed, USERS_STREAM, block])
    sigma = cfg.activity_sigma
    activity = rng.lognormal(np.log(cfg.sessions_per_user_day) - sigma ** 2 / 2, sigma, n)
    taste = rng.dirichlet(np.full(cfg.n_genres, cfg.genre_concentration), n)
    taste_cum = np.cumsum(taste, axis=1)
    fav_genre = draw_rows(taste_cum, rng.random((n, cfg.favourite_artists)))
    favourite_artists = catalogue.artists_by_genre.sample(
        fav_genre.ravel(), rng.random(fav_genre.size)).reshape(fav_genre.shape)
    shape = (n, cfg.core_tracks)
    from_fav = rng.random(shape) < cfg.core_from_favourites
    fav_pick = favourite_artists[np.arange(n)[:, None],
                                 rng.integers(0, cfg.favourite_artists, shape)]
    fav_track = catalogue.tracks_by_artist.sample(fav_pick.ravel(), rng.random(fav_pick.size))
    genre_track = catalogue.tracks_by_genre.sample(
        draw_rows(taste_cum, rng.random(shape)).ravel(), rng.random(fav_pick.size))
    core_tracks = np.where(from_fav.ravel(), fav_track, genre_track).reshape(shape)
    exploration = _exploration(cfg, rng, n)
    k = min(cfg.discovery_top_genres, cfg.n_genres)
    top_genres = np.argsort(-taste, axis=1, kind="stable")[:, :k]
    top_taste = np.take_along_axis(taste, top_genres, axis=1)
    top_genre_cum = np.cumsum(top_taste, axis=1) / top_taste.sum(axis=1, keepdims=True)
    return Users(activity=activity, taste=taste.astype(np.float32),
                 taste_cum=taste_cum.astype(np.float32),
                 favourite_artists=favourite_artists.astype(np.int32),
                 core_tracks=core_tracks.astype(np.int32), exploration=exploration.astype(np.float32),
                 top_genres=top_genres.astype(np.int32), top_genre_cum=top_genre_cum.astype(np.float32),
                 user_ids=np.empty(0, dtype=object))


def build_users(cfg: GeneratorConfig, catalogue: Catalogue) -> Users:
    """Users drawn in blocks of ``users_per_chunk`` (bounded temporaries), compact dtypes."""
    blocks = [_build_user_block(cfg, catalogue, b, min(cfg.users_per_chunk, cfg.n_users - lo))
              for b, lo in enumerate(range(0, cfg.n_users, cfg.users_per_chunk))]
    per_user = [f.name for f in fields(Users) if f.name != "user_ids"]
    return Users(**{name: np.concatenate([getattr(b, name) for b in blocks]) for name in per_user},
                 user_ids=format_ids(*USER_ID, np.arange(cfg.n_users)))
