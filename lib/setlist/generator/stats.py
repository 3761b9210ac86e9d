"""The REALISM.md statistics of raw events, and a report of each beside its target.

Most statistics read the events alone. Three read the generator's world of ``cfg`` too
(built once, see :func:`build_world`): the share of the catalogue never played, the share of
plays on artists new to the user (not a favourite), and the share of plays that follow the
previous play as one of its successors. Ids the world does not know count as neither.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from setlist.config import GeneratorConfig
from setlist.generator.contract import MS_PER_S, S_PER_HOUR, S_PER_MIN, TRACK_ID, USER_ID, parse_ids
from setlist.generator.skips import SKIP_MARKS_S, position_skip_rates
from setlist.generator.world import World, build_world, is_favourite_artist


def _session_positions(events: pd.DataFrame, gap_ms: float) -> pd.DataFrame:
    """Events sorted by (user, ts) with a 1-based ``position`` in session and a ``_session`` number.

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
    return frame.assign(position=position, _session=session, _day=frame["_stop"].dt.date)


def _world_stats(frame: pd.DataFrame, world: World) -> dict[str, float]:
    """Statistics that need the generator's world (see the module docstring)."""
    cat = world.catalogue
    user = parse_ids(frame["user_id"].to_numpy(), USER_ID[0], len(world.users.activity))
    track = parse_ids(frame["track_id"].to_numpy(), TRACK_ID[0], cat.n_tracks)
    known = (user >= 0) & (track >= 0)
    stats = {"catalogue_unplayed_share": 1.0 - len(np.unique(track[track >= 0])) / cat.n_tracks}
    new_artist = np.zeros(len(frame), dtype=bool)
    new_artist[known] = ~is_favourite_artist(world, user[known], cat.track_artist[track[known]])
    previous = np.concatenate([[-1], track[:-1]])
    follows = (frame["position"].to_numpy() > 1) & known & (previous >= 0)
    successor = np.zeros(len(frame), dtype=bool)
    successor[follows] = (cat.successors[previous[follows]] == track[follows, None]).any(axis=1)
    surface = frame["surface"].to_numpy()
    for name in sorted(set(surface)):
        here = (surface == name) & known
        stats[f"new_artist_share_{name}"] = float(new_artist[here].mean()) if here.any() else float("nan")
    for name in sorted(set(surface)):
        here = (surface == name) & follows
        stats[f"next_is_successor_share_{name}"] = float(successor[here].mean()) if here.any() else float("nan")
    return stats


def realism_stats(events: pd.DataFrame, cfg: GeneratorConfig | None = None,
                  world: World | None = None) -> dict[str, float]:
    """The REALISM.md statistics of raw events.

    A play "ends early" when ``ms_played < track_duration_ms``; skip rates below use that
    (not the ``skipped`` flag, whose disagreement is reported separately). Sessions split
    at a gap of more than ``cfg.stats_session_gap_minutes``. A repeat is a play of a
    (user, track) already played earlier the same UTC day. ``world`` defaults to the world
    of ``cfg``.
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
    stats["mean_session_length"] = float(len(frame) / frame["_session"].nunique())
    stats.update(_world_stats(frame, world or build_world(cfg)))
    return stats


def _targets(cfg: GeneratorConfig) -> dict[str, str]:
    targets = {
        "early_end_share": f"{cfg.skip_rate_target:.3f}",
        "ended_within_5s": f"{cfg.skip_within_5s:.3f}",
        "ended_within_10s": f"{cfg.skip_within_10s:.3f}",
        "ended_within_30s": f"{cfg.skip_within_30s:.3f}",
        "skips_per_hour": f"{cfg.skips_per_hour_target:.1f}",
        "repeat_share": f"{cfg.repeat_share_range[0]:.2f}-{cfg.repeat_share_range[1]:.2f}",
        "saves_per_stream": f"{cfg.save_rate:.3f}",
        "skipped_flag_disagreement": f"{cfg.skipped_flag_disagreement:.3f}",
        # Assumption: geometric session lengths (a day's end cuts the last sessions short).
        "mean_session_length": f"{cfg.session_length_mean:.1f}",
        "catalogue_unplayed_share": f"{cfg.catalogue_unplayed_target:.3f}",
    }
    for platform, rate in cfg.platform_skip.items():
        targets[f"skip_rate_{platform}"] = f"{rate:.3f}"
    for i, rate in enumerate(position_skip_rates(cfg), start=1):
        suffix = f"{i}plus" if i == cfg.plateau_position else str(i)
        targets[f"skip_rate_position_{suffix}"] = f"{rate:.3f}"
    for surface, rate in cfg.surface_skip.items():
        targets[f"skip_rate_surface_{surface}"] = f"{rate:.3f}"
    # The successor source's share is a floor: other sources can land on a successor too.
    for surface, shares in cfg.surface_sources.items():
        if shares.get("successor"):
            targets[f"next_is_successor_share_{surface}"] = f">={shares['successor']:.3f}"
    return targets


def realism_report(stats: dict[str, float], cfg: GeneratorConfig) -> str:
    """A table of each statistic beside its target ('-' where none is set)."""
    targets = _targets(cfg)
    width = max(len(k) for k in stats)
    lines = [f"{'statistic':<{width}}  {'generated':>10}  {'target':>10}"]
    for key, value in stats.items():
        shown = f"{value:,.0f}" if key == "plays" else f"{value:.3f}"
        lines.append(f"{key:<{width}}  {shown:>10}  {targets.get(key, '-'):>10}")
    return "\n".join(lines)
