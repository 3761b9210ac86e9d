"""The catalogue: artists in genres, their tracks in album order, and the fixed structure
sessions follow (each track's successors, each artist's similar artists).

Everything here depends on ``cfg.seed`` and the catalogue keys only, never on the day.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from setlist.config import GeneratorConfig
from setlist.generator.contract import ARTIST_ID, MS_PER_S, TRACK_ID, format_ids
from setlist.generator.sampling import GroupSampler

CATALOGUE_STREAM = 0
# Redraws of a neighbour that came out as the track (or artist) itself.
SELF_REDRAWS = 3


@dataclass(frozen=True)
class Catalogue:
    """Tracks are numbered artist by artist in album order (``track_rank`` 1, 2, ...).

    ``successors[t]`` lists the tracks that follow ``t`` in a session: first the next
    ``successors_album`` tracks of its artist (genre neighbours where the album ends), then
    ``successors_genre`` popularity-weighted tracks of its genre; ``successor_cum`` is the
    cumulative chance of each slot. The relation is directed: ``t -> t + 1`` is a successor,
    ``t + 1 -> t`` is not (except by a rare genre draw).
    """
    artist_genre: np.ndarray
    artist_popularity: np.ndarray
    track_artist: np.ndarray
    track_genre: np.ndarray
    track_rank: np.ndarray
    track_weight: np.ndarray
    track_duration_ms: np.ndarray
    artist_ids: np.ndarray
    track_ids: np.ndarray
    tracks_by_genre: GroupSampler
    tracks_by_artist: GroupSampler
    artists_by_genre: GroupSampler
    popularity_cum: np.ndarray
    successors: np.ndarray
    successor_cum: np.ndarray
    similar_artists: np.ndarray

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)

    @property
    def n_artists(self) -> int:
        return len(self.artist_genre)


def _neighbours(rng: np.random.Generator, sampler: GroupSampler, groups: np.ndarray,
                own: np.ndarray, width: int) -> np.ndarray:
    """(n, width) popularity-weighted draws from each row's group, other than the row itself."""
    rows = np.repeat(groups, width)
    mine = np.repeat(own, width)
    picks = sampler.sample(rows, rng.random(len(rows)))
    for _ in range(SELF_REDRAWS):
        again = np.flatnonzero(picks == mine)
        if len(again) == 0:
            break
        picks[again] = sampler.sample(rows[again], rng.random(len(again)))
    return picks.reshape(len(groups), width)


def _successors(cfg: GeneratorConfig, rng: np.random.Generator, tracks_by_genre: GroupSampler,
                track_genre: np.ndarray, track_rank: np.ndarray,
                tracks_each: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each track's successor slots and the cumulative chance of each slot."""
    n_tracks = len(track_genre)
    track = np.arange(n_tracks)
    width = cfg.successors_album + cfg.successors_genre
    neighbours = _neighbours(rng, tracks_by_genre, track_genre, track, width)
    album_left = np.repeat(tracks_each, tracks_each) - track_rank
    step = np.arange(1, cfg.successors_album + 1)
    album = np.where(step[None, :] <= album_left[:, None], track[:, None] + step[None, :],
                     neighbours[:, :cfg.successors_album])
    successors = np.concatenate([album, neighbours[:, cfg.successors_album:]], axis=1)
    # With only one kind of slot, that kind takes every pick.
    album_weight = (cfg.successor_album_weight if cfg.successors_album and cfg.successors_genre
                    else float(cfg.successors_album > 0))
    weights = np.concatenate([np.full(cfg.successors_album, album_weight / max(cfg.successors_album, 1)),
                              np.full(cfg.successors_genre, (1.0 - album_weight) / max(cfg.successors_genre, 1))])
    return successors.astype(np.int32), np.cumsum(weights / weights.sum())


def build_catalogue(cfg: GeneratorConfig) -> Catalogue:
    rng = np.random.default_rng([cfg.seed, CATALOGUE_STREAM])
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
    tracks_by_genre = GroupSampler(track_genre, track_weight, cfg.n_genres)
    artists_by_genre = GroupSampler(artist_genre, artist_pop, cfg.n_genres)
    successors, successor_cum = _successors(cfg, rng, tracks_by_genre, track_genre, rank_in_artist,
                                            tracks_each)
    similar = _neighbours(rng, artists_by_genre, artist_genre, np.arange(n_artists), cfg.similar_artists)
    return Catalogue(
        artist_genre=artist_genre, artist_popularity=artist_pop, track_artist=track_artist,
        track_genre=track_genre, track_rank=rank_in_artist, track_weight=track_weight,
        track_duration_ms=duration_ms,
        artist_ids=format_ids(*ARTIST_ID, np.arange(n_artists)),
        track_ids=format_ids(*TRACK_ID, np.arange(len(track_artist))),
        tracks_by_genre=tracks_by_genre,
        tracks_by_artist=GroupSampler(track_artist, within, n_artists),
        artists_by_genre=artists_by_genre,
        popularity_cum=np.cumsum(track_weight) / track_weight.sum(),
        successors=successors, successor_cum=successor_cum,
        similar_artists=similar.astype(np.int32))
