"""Typed configuration: one model loaded from ``conf/*.yaml`` with dotted overrides.

Every weight, threshold, path and seed of Setlist lives here. Files are merged in
order (later wins), then ``--set section.key=value`` overrides are applied; the
result is validated and an unknown key, a wrong type or a value out of its range
raises :class:`ConfigError` naming the dotted key and what is allowed.

The model is strict: ``true`` is never a number and ``1`` never a boolean, so a YAML slip
cannot silently flip a weight. ``conf/default.yaml`` documents every key with the same
values as the defaults below (``tests/test_config_defaults.py`` keeps the two equal).
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      model_validator)

from setlist.errors import ConfigError

DEFAULT_CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _date_as_text(value: Any) -> Any:
    # YAML reads an unquoted 2026-11-01 as a date; the config keeps dates as yyyy-MM-dd text.
    return value.isoformat() if isinstance(value, date) and not isinstance(value, datetime) else value


def _iso_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("expected a date as yyyy-MM-dd") from None
    return value


# Value types named for what they mean; bounds are checked at load, before any write.
Share = Annotated[float, Field(ge=0, le=1)]
# A probability that goes through a logit: 0 and 1 themselves are out.
Probability = Annotated[float, Field(gt=0, lt=1)]
NonNegative = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
# Table names become folder names under paths.lake: no separators, no "..", not empty.
TableName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
IsoDate = Annotated[str, BeforeValidator(_date_as_text), AfterValidator(_iso_date)]


def _invalid(key: str, message: str) -> ConfigError:
    """A cross-field error in the same shape as :func:`_describe`'s."""
    return ConfigError(f"config key '{key}': {message}")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SparkConfig(Section):
    master: str = "local[2]"
    app_name: str = "setlist"
    shuffle_partitions: int = Field(default=8, gt=0)
    # Partitions Delta uses to rebuild a table's snapshot from its log (Delta's default, 50,
    # suits logs of thousands of commits; on a small local lake it cost ~4 s of every write).
    delta_snapshot_partitions: int = Field(default=2, gt=0)
    driver_memory: str = "4g"
    # Folder of Delta JARs fetched by scripts/setup.sh; when it holds no JARs the
    # session falls back to resolving ``delta_packages`` with Spark's Ivy.
    jars_dir: str = ".cache/jars"
    delta_packages: str = "io.delta:delta-spark_4.2_2.13:4.4.0"
    log_level: str = "WARN"
    conf: dict[str, str] = Field(default_factory=dict)


class PathsConfig(Section):
    lake: str = "data/lake"
    raw: str = "data/raw"
    mlflow_tracking_uri: str = "sqlite:///data/mlflow.db"
    mlflow_artifacts: str = "data/mlartifacts"
    checkpoints: str = "data/checkpoints"
    # Rankers compiled for publish (publish.scorer=compiled), by model fingerprint; a local
    # folder on the driver (Spark ships the files to executors).
    compiled_models: str = "data/compiled_models"
    reports: str = "data/reports"


class TablesConfig(Section):
    listens: TableName = "listens"
    quarantined_events: TableName = "quarantined_events"
    ingest_audit: TableName = "ingest_audit"
    interactions: TableName = "interactions"
    candidates: TableName = "candidates"
    ranked_recs: TableName = "ranked_recs"
    # One row per completed daily run: the marker backfill uses to skip finished days.
    pipeline_runs: TableName = "pipeline_runs"
    # One row per (experiment, user seen up to ds): bucket, variant, model reference.
    experiment_assignments: TableName = "experiment_assignments"
    # One row per (experiment, metric, treatment variant) analysed on ds.
    experiment_results: TableName = "experiment_results"
    # Count data / public data: the persisted per-user (or time) split the ranker trains on.
    ranker_split: TableName = "ranker_split"
    # train_ranker's sampled, labelled frame of each day, reused by the next days' trainings.
    ranker_frames: TableName = "ranker_frames"
    # HetRec's social graph (user_id, friend_id), imported beside the play counts.
    user_friends: TableName = "user_friends"
    # Per seed track, the ranked continuations a player looks up at play time.
    next_tracks: TableName = "next_tracks"
    # train_sequential's training shards of each day: per user the play sequence, held-out plays removed.
    sequences: TableName = "sequences"
    # train_generative's semantic IDs of each day: per track its code tuple (versioned by ds).
    semantic_ids: TableName = "semantic_ids"


class EventsConfig(Section):
    input_format: Literal["json", "csv", "parquet"] = "json"
    reason_end_values: list[str] = Field(default_factory=lambda: [
        "trackdone", "fwdbtn", "backbtn", "endplay", "logout", "remote",
        "trackerror", "unexpected-exit", "unexpected-exit-while-paused", "clickrow",
        "unknown"])
    surfaces: list[str] = Field(default_factory=lambda: [
        "home", "now_playing", "search", "library", "playlist", "radio"], min_length=1)
    # A play may run slightly past the catalogue duration (crossfade, rounding).
    ms_played_tolerance_ms: int = Field(default=5000, ge=0)
    # Events of day D are ingested after D ends; anything stamped later than
    # D + 1 day + late_arrival_hours cannot have been observed yet.
    late_arrival_hours: int = Field(default=24, ge=0)
    allow_empty_input: bool = False


class GeneratorConfig(Section):
    seed: int = 42
    n_users: int = Field(default=2000, gt=0)
    n_artists: int = Field(default=800, gt=0)
    n_genres: int = Field(default=20, gt=0)
    tracks_per_artist_mean: float = Field(default=8.0, gt=0)
    start_date: IsoDate = "2026-11-01"
    days: int = Field(default=7, ge=1)
    # Mean sessions per user per day (activity is log-normal across users).
    sessions_per_user_day: float = Field(default=1.2, gt=0)
    activity_sigma: float = Field(default=1.0, ge=0)
    # Session lengths are geometric with this mean, so at least one play.
    session_length_mean: float = Field(default=12.0, ge=1)
    # Zipf exponent of artist popularity and of rank within the artist; calibrated so a generated
    # week at the default size leaves about catalogue_unplayed_target of the tracks unplayed.
    track_popularity_zipf: float = Field(default=1.45, ge=0)
    # Dirichlet concentration of each user's genre taste.
    genre_concentration: float = Field(default=0.3, gt=0)
    favourite_artists: int = Field(default=12, ge=1)
    core_tracks: int = Field(default=40, ge=1)
    # The base mix of track sources, shared by every surface for the plays its own
    # surface_sources leave over (assumptions, tuned so repeat_share lands in REALISM's range):
    # core tracks (heavy rotation, the source of repeats; Benson 2016: 15-59 % repeats),
    # favourite artists, explore_share (global popularity), the rest by taste.
    repeat_share: Share = 0.35
    favourite_artist_share: Share = 0.30
    # Skips (REALISM.md): 48.6 % end early; within 5/10/30 s: 24/29/35 % of all plays.
    skip_rate_target: Probability = 0.486
    skip_within_5s: Share = 0.24
    skip_within_10s: Share = 0.29
    skip_within_30s: Share = 0.35
    first_track_skip: Probability = 0.38
    plateau_skip: Probability = 0.53
    off_taste_skip_boost: NonNegative = 0.25
    save_rate: Probability = 0.025
    skipped_flag_disagreement: Share = 0.01
    surface_mix: dict[str, NonNegative] = Field(default_factory=lambda: {
        "home": 0.25, "now_playing": 0.15, "search": 0.10,
        "library": 0.20, "playlist": 0.20, "radio": 0.10}, min_length=1)
    platform_mix: dict[str, NonNegative] = Field(default_factory=lambda: {"mobile": 0.7, "desktop": 0.3},
                                                 min_length=1)
    skip_reason_mix: dict[str, NonNegative] = Field(default_factory=lambda: {
        "fwdbtn": 0.70, "backbtn": 0.08, "endplay": 0.10, "logout": 0.04,
        "remote": 0.03, "trackerror": 0.02, "unexpected-exit": 0.03}, min_length=1)
    done_reason_mix: dict[str, NonNegative] = Field(default_factory=lambda: {
        "trackdone": 0.95, "endplay": 0.03, "logout": 0.02}, min_length=1)
    track_duration_mean_s: float = Field(default=215.0, gt=0)
    files_per_day: int = Field(default=2, ge=1)
    # --- Catalogue shape (assumptions) ---
    track_duration_sigma: float = Field(default=0.35, ge=0)
    track_duration_min_s: float = Field(default=45.0, gt=0)
    track_duration_max_s: float = Field(default=900.0, gt=0)
    # --- Sessions (assumptions: no published figures) ---
    # Relative share of session starts per UTC hour 0..23 (night trough, evening peak).
    hourly_profile: list[NonNegative] = Field(default_factory=lambda: [
        2.0, 1.2, 0.8, 0.6, 0.6, 0.9, 1.8, 3.2, 4.5, 4.6, 4.4, 4.5,
        4.8, 4.8, 4.6, 4.7, 5.2, 5.8, 6.2, 6.3, 6.0, 5.2, 4.0, 2.9], min_length=24, max_length=24)
    # A user's next session starts at least this long after the previous one ended
    # (longer than stats_session_gap_minutes, so sessions can be recovered from ts).
    min_session_gap_minutes: float = Field(default=45.0, ge=0)
    inter_play_gap_s_mean: float = Field(default=1.5, ge=0)
    shuffle_share: Share = 0.45
    # --- Track choice (assumptions: no published figures) ---
    # Base-mix plays picked from global popularity regardless of taste; scaled by exploration.
    explore_share: Share = 0.12
    # Core tracks are played in a Zipf rotation: the first few far more often.
    core_rotation_zipf: float = Field(default=1.0, ge=0)
    # Share of a user's core tracks drawn from their favourite artists (rest: their genres).
    core_from_favourites: Share = 0.5
    # A play is off-taste when the user's taste weight for the track's genre is below this.
    off_taste_weight: Share = 0.05
    # Per surface, the shares of its plays from the surface's own sources (the rest follows the
    # base mix): successor = a successor of the previous track (album order or genre neighbour),
    # discovery = an artist new to the user in one of their top genres (scaled by exploration),
    # radio_seed / radio_similar = the session's seed artist / one of its similar artists.
    surface_sources: dict[str, dict[str, Share]] = Field(default_factory=lambda: {
        "home": {"discovery": 0.50, "successor": 0.05},
        "now_playing": {"successor": 0.75},
        "search": {"successor": 0.10},
        "library": {"successor": 0.05},
        "playlist": {"successor": 0.15},
        "radio": {"radio_seed": 0.40, "radio_similar": 0.40, "successor": 0.10}})
    # Each track's successors, fixed per seed: the next tracks of its artist in album order
    # (genre neighbours where the album ends), then popularity-weighted tracks of its genre.
    successors_album: int = Field(default=2, ge=0)
    successors_genre: int = Field(default=3, ge=0)
    # Share of successor picks that go to the album slots (the rest to the genre slots).
    successor_album_weight: Share = 0.6
    # Similar artists per artist (same genre, popularity weighted, fixed per seed).
    similar_artists: int = Field(default=4, ge=1)
    # A session keeps a mood genre (radio: its seed artist's); taste, favourite and discovery
    # picks stay in it with this probability.
    mood_stickiness: Share = 0.7
    # A radio session's seed is a favourite artist with this probability, else a mood-genre artist.
    radio_seed_favourite_share: Share = 0.5
    # Discovery draws its genre (outside the mood) from the user's top genres and an artist there
    # by popularity, redrawn up to discovery_redraws times while the user knows it (favourite or
    # core): new to the user, yet popular, so the catalogue's tail stays unplayed.
    discovery_top_genres: int = Field(default=3, ge=1)
    discovery_redraws: int = Field(default=20, ge=0)
    # Per-user exploration propensity ~ Beta(mean, concentration); it scales the discovery and
    # explore shares by propensity / mean, so the mean shares stay as configured.
    exploration_mean: Probability = 0.3
    exploration_concentration: float = Field(default=4.0, gt=0)
    # The generator's true preference (true_affinity): the user's taste for the track's genre
    # relative to their top genre, plus these bonuses for a favourite artist and a core track.
    affinity_favourite_bonus: NonNegative = 0.5
    affinity_core_bonus: NonNegative = 0.5
    # --- Skips ---
    # Skip rate by platform and by surface; surfaces map to MSSD contexts (assumption):
    # home=personalized playlist, now_playing/playlist=editorial playlist, search=catalog,
    # library=user collection, radio=radio.
    platform_skip: dict[str, Probability] = Field(default_factory=lambda: {"mobile": 0.51, "desktop": 0.40})
    surface_skip: dict[str, Probability] = Field(default_factory=lambda: {
        "home": 0.45, "now_playing": 0.51, "search": 0.46,
        "library": 0.55, "playlist": 0.51, "radio": 0.55})
    # Position (1-based) from which the plateau skip rate holds; earlier ones interpolate.
    plateau_position: int = Field(default=4, ge=1)
    # Skips after 30 s end at a steady (exponential) hazard with this mean, cut at the track end.
    late_skip_scale_s: float = Field(default=120.0, gt=0)
    # Log-odds lifts of a skip by fit (assumptions), centred within each (surface, position)
    # so the calibrated rates above still hold: per unit of true affinity; per unit of session
    # fit (share of the mood genre and the session's earlier plays in the track's genre); for a
    # track that is a successor of the previous one.
    affinity_skip_logit: float = -1.2
    session_fit_skip_logit: float = -1.0
    successor_skip_logit: float = -0.4
    # --- Saves: log-odds lifts, the base is solved so the mean is save_rate ---
    save_completed_logit: float = 1.5
    save_on_taste_logit: float = 0.8
    save_affinity_logit: float = 0.8
    # --- reason_start (assumption) ---
    # The first play of a session starts for one of these reasons; a later play starts with
    # the previous play's reason_end when it is one of carry_over_reasons, else from this mix.
    start_reason_mix: dict[str, NonNegative] = Field(default_factory=lambda: {
        "clickrow": 0.50, "playbtn": 0.35, "appload": 0.10, "remote": 0.05}, min_length=1)
    carry_over_reasons: list[str] = Field(default_factory=lambda: [
        "trackdone", "fwdbtn", "backbtn", "remote", "trackerror"])
    # Newton steps used to solve a base rate so a mean probability hits its target.
    calibration_steps: int = Field(default=8, ge=1)
    # Users generated together (one chunk); bounds memory, fixes the random streams.
    users_per_chunk: int = Field(default=25000, gt=0)
    # --- realism_stats / realism_report ---
    stats_session_gap_minutes: float = Field(default=30.0, gt=0)
    skips_per_hour_target: float = Field(default=14.7, gt=0)
    repeat_share_range: list[Share] = Field(default_factory=lambda: [0.15, 0.59], min_length=2, max_length=2)
    # REALISM.md: about 25 % of tracks unplayed in a year (the report shows a generated week's).
    catalogue_unplayed_target: Share = 0.25

    SURFACE_SOURCES: ClassVar[tuple[str, ...]] = ("successor", "discovery", "radio_seed", "radio_similar")

    @model_validator(mode="after")
    def _check_shapes(self) -> "GeneratorConfig":
        for surface, shares in self.surface_sources.items():
            unknown = sorted(set(shares) - set(self.SURFACE_SOURCES))
            if unknown:
                raise _invalid(f"generator.surface_sources.{surface}",
                               f"unknown sources {unknown}, expected some of {list(self.SURFACE_SOURCES)}")
            if sum(shares.values()) > 1 + 1e-9:  # a rounding slack, so 0.7 + 0.2 + 0.1 passes
                raise _invalid(f"generator.surface_sources.{surface}",
                               f"the shares must add up to at most 1, got {sum(shares.values())}")
        if self.successors_album + self.successors_genre < 1:
            raise _invalid("generator.successors_album", "successors_album + successors_genre must be >= 1")
        within = [self.skip_within_5s, self.skip_within_10s, self.skip_within_30s, self.skip_rate_target]
        if within != sorted(within):
            raise _invalid("generator.skip_within_5s/10s/30s", f"the cumulative skip shares must grow up to "
                           f"generator.skip_rate_target: 5s <= 10s <= 30s <= target, got {within}")
        if self.skip_rate_target + self.off_taste_skip_boost >= 1:
            raise _invalid("generator.off_taste_skip_boost", f"skip_rate_target + off_taste_skip_boost must be "
                           f"< 1, got {self.skip_rate_target} + {self.off_taste_skip_boost}")
        if self.track_duration_min_s >= self.track_duration_max_s:
            raise _invalid("generator.track_duration_min_s", f"must be < generator.track_duration_max_s, got "
                           f"{self.track_duration_min_s} >= {self.track_duration_max_s}")
        low, high = self.repeat_share_range
        if low > high:
            raise _invalid("generator.repeat_share_range",
                           f"expected [low, high] with low <= high, got {[low, high]}")
        return self


class RewardsConfig(Section):
    listen_threshold_s: float = Field(default=30.0, ge=0)
    listen_weight: float = Field(default=1.0, ge=0)
    completion_weight: float = Field(default=0.5, ge=0)
    # A skip counts against the track: a penalty, never a credit.
    skip_weight: float = Field(default=-0.75, le=0)
    save_weight: float = Field(default=2.0, ge=0)
    # A play counts as completed once this share of the track was heard.
    completion_ratio: float = Field(default=0.9, gt=0, le=1)
    # Repeated listens add log(1 + credit) in this base: the second listen is
    # worth less than the first (diminishing returns).
    repeat_log_base: float = Field(default=2.0, gt=1)
    half_life_days: float = Field(default=30.0, gt=0)
    lookback_days: int = Field(default=90, gt=0)
    skip_reasons: list[str] = Field(default_factory=lambda: ["fwdbtn", "backbtn"])


class ExplorationConfig(Section):
    """How publish explores, so that off-policy evaluation can value another ranker from the logs
    (setlist.ope.policies); ranked_recs records each served row's propensity under it."""
    # none: the ranker's order (no propensities, no OPE); epsilon_greedy: a share of lists
    # shuffled; plackett_luce: rankings sampled from the softmax of score / temperature.
    policy: Literal["none", "epsilon_greedy", "plackett_luce"] = "none"
    # Share of lists served as a random permutation of the pool: it bounds the cost in reward.
    epsilon: Probability = 0.05
    temperature: float = Field(default=0.5, gt=0)
    # Only the pool best-scored tracks are permuted; the rest of the list stays in model order.
    # bench/ope.py: pool 20 with epsilon 0.05 costs 1.1 % of the champion's value and meets the
    # OPE targets on 900 lists; pool 100 with epsilon 0.03 (1.5 %) shows more tracks, but
    # explored too few lists per position to fit the examination curve (measured before
    # fit_examination used every row of the pool).
    pool: int = Field(default=20, ge=2)
    # Monte Carlo draws per list for plackett_luce's position marginals beyond the first.
    samples: int = Field(default=2000, ge=100)
    seed: int = 20261201


class PublishConfig(Section):
    top_n: int = Field(default=50, gt=0)
    # Recorded as model_version when no model holds the champion alias (blend_order is published).
    model_version: str = "candidate-blend"
    # A top_n list per user for each of these surfaces (the ranker sees the surface).
    surfaces: list[str] = Field(default_factory=lambda: ["home", "now_playing", "radio"], min_length=1)
    # Per surface: leave out what the user already played. Discovery surfaces (home) do by
    # default; continuation surfaces (now_playing, radio) replay favourites. Unlisted: False.
    exclude_played: dict[str, bool] = Field(default_factory=lambda: {
        "home": True, "now_playing": False, "radio": False})
    # "compiled": the ranker compiled to native code by lleaves (same scores, ~4x LightGBM's
    # predict, bench/ranking.py; a compile of some seconds per new model); "lightgbm": predict;
    # "auto": compiled from compile_min_rows rows to score (below, the compile costs more than
    # it saves: ~7 s for 100 trees against ~1.5 s of predict per 250k rows on 2 cores).
    scorer: Literal["auto", "compiled", "lightgbm"] = "auto"
    compile_min_rows: int = Field(default=2_000_000, ge=0)
    # CPU the compiled ranker targets: null = the driver's own; name a common one (e.g.
    # "x86-64-v3") when executors run other CPUs.
    compiled_target_cpu: str | None = None
    exploration: ExplorationConfig = ExplorationConfig()

    def excludes_played(self, surface: str) -> bool:
        return self.exclude_played.get(surface, False)


class LabConfig(Section):
    """The signal lab (``setlist lab``, setlist.lab): extra signals and the bootstrap."""
    # Extra ranker features a variant can add: "noise" (no information, the control) and
    # "true_affinity" (the generator's own preference; generated data only).
    signals: list[Literal["noise", "true_affinity"]] = Field(default_factory=list)
    seed: int = 20261201
    bootstrap_resamples: int = Field(default=2000, ge=100)
    confidence: float = Field(default=0.95, gt=0, lt=1)


class TrackingConfig(Section):
    experiment_name: str = "setlist"
    model_name: str = "setlist-ranker"
    champion_alias: str = "champion"


class ExperimentConfig(Section):
    """One A/B test: who gets which variant, and which model each variant publishes."""
    # Float shares are summed, so "sums to 1" is checked to this tolerance.
    ALLOCATION_TOLERANCE: ClassVar[float] = 1e-9

    name: str
    salt: str
    # variant -> share of users; dict order is bucket order, so append, never reorder.
    allocation: dict[str, float]
    # variant -> model reference: a registry alias (e.g. "champion") or a version number.
    models: dict[str, str | int]
    control: str = "control"
    bucket_count: int = Field(default=10_000, gt=0)
    # First day users were exposed (yyyy-MM-dd); metrics before it are pre-period.
    start_date: IsoDate | None = None

    @model_validator(mode="after")
    def _check(self) -> "ExperimentConfig":
        where = f"experiment '{self.name}'"
        total = sum(self.allocation.values())
        if abs(total - 1.0) > self.ALLOCATION_TOLERANCE:
            raise ConfigError(f"{where}: allocation shares {self.allocation} sum to {total}, expected 1")
        if any(share <= 0 for share in self.allocation.values()):
            raise ConfigError(f"{where}: every allocation share must be > 0, got {self.allocation}")
        if self.control not in self.allocation:
            raise ConfigError(f"{where}: control variant '{self.control}' is not in allocation "
                              f"{sorted(self.allocation)}")
        if set(self.models) != set(self.allocation):
            raise ConfigError(f"{where}: models name variants {sorted(self.models)}, "
                              f"expected exactly the allocation's {sorted(self.allocation)}")
        return self


class ExperimentSimulatorConfig(Section):
    """Synthetic experiments with a known effect, to check the analysis (coverage, A/A)."""
    seed: int = 20261101
    n_users: int = Field(default=4000, gt=0)
    n_simulations: int = Field(default=1000, gt=0)
    metric: str = "minutes_played"
    # Injected relative lift of the metric in every non-control variant (-1: no listening left).
    relative_lift: float = Field(default=0.03, gt=-1)
    # Per-period minutes = propensity * period noise, both log-normal: propensity is shared
    # by the pre and post periods (that correlation is what CUPED exploits).
    log_minutes_mean: float = 5.5
    propensity_sigma: float = Field(default=1.0, ge=0)
    period_noise_sigma: float = Field(default=0.5, ge=0)
    # Share of users with no listening in a period (churned, on holiday, new).
    inactive_share: float = Field(default=0.08, ge=0, lt=1)
    pre_days: int = Field(default=14, gt=0)
    post_days: int = Field(default=14, gt=0)
    # Event detail, for end-to-end aggregation tests.
    mean_play_minutes: float = Field(default=3.0, gt=0)
    skip_rate: Share = 0.45
    save_rate: Share = 0.025
    recommendation_share: Share = 0.3


class ExperimentsConfig(Section):
    # Per-user outcome metrics the analysis knows how to aggregate from listens
    # (setlist.experiments.outcomes); ``metrics`` picks among them.
    KNOWN_METRICS: ClassVar[tuple[str, ...]] = (
        "minutes_played", "streams", "skips", "saves", "reward", "rec_minutes_played")

    alpha: Probability = 0.05
    # Sample-ratio mismatch is flagged below this chi-square p-value.
    srm_alpha: Probability = 0.001
    metrics: list[str] = Field(default_factory=lambda: [
        "minutes_played", "streams", "skips", "saves"])
    # Column suffix of a metric's pre-exposure value, the CUPED covariate.
    pre_suffix: str = "_pre"
    # CUPED covariate window: the pre_days days before an experiment's start_date.
    pre_days: int = Field(default=14, gt=0)
    # rec_minutes_played: listening on the surfaces that show our recommendations.
    recommendation_surfaces: list[str] = Field(default_factory=lambda: ["home"])
    # An A/A holdout: both arms publish the champion (as conf/default.yaml ships it).
    experiments: list[ExperimentConfig] = Field(default_factory=lambda: [ExperimentConfig(
        name="ranker_aa", salt="ranker_aa_2026_11", allocation={"control": 0.5, "treatment": 0.5},
        models={"control": "champion", "treatment": "champion"}, start_date="2026-11-08")])
    simulator: ExperimentSimulatorConfig = ExperimentSimulatorConfig()

    @model_validator(mode="after")
    def _check_metrics(self) -> "ExperimentsConfig":
        unknown = sorted(set(self.metrics) - set(self.KNOWN_METRICS))
        if unknown:
            raise ConfigError(f"experiments.metrics: unknown metric(s) {unknown}, "
                              f"expected some of {list(self.KNOWN_METRICS)}")
        names = [e.name for e in self.experiments]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"experiments.experiments: duplicate experiment name(s) {duplicated}")
        return self


class EvaluationConfig(Section):
    """Offline evaluation of candidate sources and ranked lists (setlist.evaluation)."""
    # Candidate recall is measured at each of these list lengths.
    recall_ks: list[PositiveInt] = Field(default_factory=lambda: [100, 500], min_length=1)
    # NDCG, HitRate, MAP, coverage and popularity bias are measured on the top ranking_k.
    ranking_k: int = Field(default=10, gt=0)
    # global_time: for timestamped listens; per_user_holdout: for count data (HetRec).
    split: Literal["global_time", "per_user_holdout"] = "global_time"
    # Cutoff of the global time split: this quantile of all event timestamps.
    cutoff_quantile: float = Field(default=0.9, gt=0, lt=1)
    # Test period: events in [cutoff, cutoff + horizon_days).
    horizon_days: int = Field(default=30, gt=0)
    # Per-user hold-out: this share of each user's items goes to test ...
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    # ... for users with at least this many items (others stay whole in train).
    holdout_min_items: int = Field(default=5, gt=1)
    seed: int = 20261104
    # Score only test users who also have train history (cold users have no personal lists).
    warm_users_only: bool = True
    # Union list = reciprocal-rank fusion of the sources: sum over sources of 1 / (rrf_k + rank).
    rrf_k: float = Field(default=60.0, ge=0)
    # Timestamp columns the leakage guard checks (those a frame has) against the cutoff.
    leakage_ts_columns: list[str] = Field(default_factory=lambda: ["last_played_ts", "source_max_ts"])


class ImportersConfig(Section):
    """How public data sets map onto Setlist inputs (setlist.importers)."""
    # Pre-aggregated play counts -> reward: log1p(plays) * count_reward_scale (or plays, or 1).
    count_reward: Literal["log1p", "linear", "binary"] = "log1p"
    count_reward_scale: float = Field(default=1.0, gt=0)
    # Run date written to interactions built from counts that carry no time (HetRec).
    counts_ds: IsoDate = "2011-05-31"
    # Sequences without time (S3-Rec): item k of every user is stamped start + k * step.
    synthetic_start: str = "2011-01-01T00:00:00"
    synthetic_step_seconds: int = Field(default=3600, gt=0)
    # Items that are not tracks (artists, films) get this catalogue duration.
    track_duration_ms: int = Field(default=210_000, gt=0)
    # Ratings -> plays: >= completed_min a completed listen, <= skip_max an early skip,
    # in between a listen past the threshold that stops at partial_listen_ratio of the item.
    rating_completed_min: int = 4
    rating_skip_max: int = 2
    skip_ms_played: int = Field(default=10_000, ge=0)
    partial_listen_ratio: float = Field(default=0.5, gt=0, lt=1)
    reason_start: str = "clickrow"
    surface: str = "library"
    platform: str = "unknown"
    tag_assignments_table: TableName = "tag_assignments"

    @model_validator(mode="after")
    def _check_ratings(self) -> "ImportersConfig":
        if self.rating_skip_max >= self.rating_completed_min:
            raise _invalid("importers.rating_skip_max", f"must be < importers.rating_completed_min, got "
                           f"{self.rating_skip_max} >= {self.rating_completed_min}")
        return self


class AlsConfig(Section):
    """Spark MLlib implicit ALS on the interactions' reward (skips: confidence in a zero preference)."""
    rank: int = Field(default=64, gt=0)
    reg_param: float = Field(default=0.1, ge=0)
    alpha: float = Field(default=10.0, ge=0)
    max_iter: int = Field(default=10, gt=0)
    seed: int = 17
    # Without a checkpoint dir (set by the step from paths.checkpoints) Spark ignores this and
    # long runs overflow the stack with lineage.
    checkpoint_interval: int = 5
    num_blocks: int = Field(default=2, gt=0)
    # Music is re-listened: played tracks stay candidates unless this is set.
    exclude_played: bool = False
    # "blocked": users scored in blocks against broadcast item factors (numpy matmul + argpartition);
    # "recommend_for_all": ALSModel.recommendForAllUsers (measured slower in bench/als.py).
    scoring: Literal["blocked", "recommend_for_all"] = "blocked"
    score_block_users: int = Field(default=2048, gt=0)
    # Items scored at once: a task holds score_block_users x score_block_items float32 scores.
    score_block_items: int = Field(default=65536, gt=0)
    # Per scoring task: the score block plus the broadcast item factors (tracks x rank float32).
    score_memory_mb: int = Field(default=1024, gt=0)
    # Spark storage level of ALS's intermediate and final factor RDDs.
    storage_level: Literal["MEMORY_AND_DISK", "MEMORY_ONLY", "DISK_ONLY"] = "MEMORY_AND_DISK"
    top_n: int = Field(default=100, gt=0)

    @model_validator(mode="after")
    def _check_score_block(self) -> "AlsConfig":
        # The catalogue-independent part; the item factors are checked against the catalogue
        # before training (candidates.als.check_scoring_memory).
        block_mb = 4 * self.score_block_users * self.score_block_items / 2**20
        if block_mb > self.score_memory_mb:
            raise _invalid("candidates.als.score_memory_mb", f"a score block of score_block_users="
                           f"{self.score_block_users} x score_block_items={self.score_block_items} x 4 B is "
                           f"{block_mb:,.0f} MiB, over the budget of {self.score_memory_mb} MiB")
        return self


class PopularityConfig(Section):
    """Recent popularity: qualified listens in a window, each decayed by its age."""
    window_days: int = Field(default=28, gt=0)
    half_life_days: float = Field(default=7.0, gt=0)
    listen_threshold_s: float = Field(default=30.0, ge=0)
    exclude_played: bool = True
    # Popular tracks considered beyond top_n, so excluding played ones still fills the list.
    pool_margin: int = Field(default=200, ge=0)
    top_n: int = Field(default=100, gt=0)


class ColistenConfig(Section):
    """Item-item neighbours from tracks played close together in a session."""
    session_gap_minutes: float = Field(default=30.0, gt=0)
    # A play pairs with the next ``window_plays`` plays of its session only: pairs per session
    # grow linearly, not quadratically, with its length.
    window_plays: int = Field(default=5, gt=0)
    listen_threshold_s: float = Field(default=30.0, ge=0)
    # Count data with no sessions: pairs among each user's most rewarded tracks (one makes no pair).
    user_max_tracks: int = Field(default=50, ge=2)
    similarity: Literal["cosine", "pmi"] = "cosine"
    # Added to the cosine denominator: rare pairs count less.
    shrinkage: float = Field(default=0.0, ge=0)
    min_pair_count: int = Field(default=2, ge=1)
    neighbours_per_track: int = Field(default=50, gt=0)
    seed_tracks: int = Field(default=20, gt=0)
    exclude_played: bool = False
    top_n: int = Field(default=100, gt=0)


class OwnArtistsConfig(Section):
    """Tracks by the artists a user rewards most, minus those the user has worn out."""
    top_artists: int = Field(default=10, gt=0)
    tracks_per_artist: int = Field(default=20, gt=0)
    # Worn out: played more than this in the interactions' lookback, or skipped this often
    # (0 skips would wear out every track).
    worn_out_plays: int = Field(default=20, ge=0)
    worn_out_skips: int = Field(default=2, ge=1)
    exclude_played: bool = False
    top_n: int = Field(default=100, gt=0)


class EaseConfig(Section):
    """EASE (Steck, WWW 2019): item-item weights in closed form, B = I - P diagMat(1 / diag(P)),
    P = (X'X + l2 I)^-1, with X the binary user x item matrix; a user's scores are x_u B."""
    l2: float = Field(default=200.0, gt=0)
    # Items with fewer users than this are left out of the model (they cannot co-occur enough
    # to be learnt, and they make the Gram matrix much larger).
    min_item_users: int = Field(default=2, ge=1)
    # The closed form is solved on the driver (items^2 doubles) while the model's catalogue is
    # at most this; above it the source falls back to top-k item-KNN and logs which one ran.
    max_items: int = Field(default=10_000, gt=0)
    knn_neighbours: int = Field(default=100, gt=0)
    knn_similarity: Literal["cosine", "bm25"] = "cosine"
    exclude_played: bool = False
    top_n: int = Field(default=100, gt=0)


class ContinuationConfig(Section):
    """Directed next-track transitions (setlist.candidates.continuation): the ``next_tracks``
    table and the ``continuation`` source."""
    session_gap_minutes: float = Field(default=30.0, gt=0)
    listen_threshold_s: float = Field(default=30.0, ge=0)
    # The plays after a seed that count, at 1 / distance (the very next play counts 1).
    window_plays: int = Field(default=3, gt=0)
    # Added to a seed's plays in the score's denominator: a seed seen twice is not a certainty.
    shrinkage: float = Field(default=2.0, ge=0)
    # Least summed weight a continuation needs to be listed.
    min_transitions: float = Field(default=1.0, gt=0)
    tracks_per_seed: int = Field(default=50, gt=0)
    seed_tracks: int = Field(default=20, gt=0)
    exclude_played: bool = False
    top_n: int = Field(default=100, gt=0)


class SequentialConfig(Section):
    """The causal transformer source (setlist.sequential): sequences, model, training, gate."""
    # Plays of the last history_days days before the day's end form each user's sequence, the
    # latest max_len of them; users with fewer than min_sequence_items plays are not trained on.
    history_days: int = Field(default=28, gt=0)
    max_len: int = Field(default=50, gt=1)
    min_sequence_items: int = Field(default=2, ge=2)
    dim: int = Field(default=64, gt=0)
    heads: int = Field(default=2, gt=0)
    layers: int = Field(default=2, gt=0)
    # Each block's feed-forward inner width as a multiple of dim: 1 as in SASRec, 4 as in BSARec
    # and the original Transformer.
    feed_forward_multiplier: int = Field(default=1, gt=0)
    # BSARec's (and BERT's) block layout: a LayerNorm after each residual sum, normalised input
    # embeddings, weights initialised N(0, 0.02) (setlist.sequential.blocks). Off: pre-norm.
    post_norm: bool = False
    dropout: float = Field(default=0.2, ge=0, lt=1)
    # Dropout on the attention weights: off, since on CPU drawing its [B, H, L, L] mask costs about
    # as much as the rest of a step (bench/sequential.py turns it on for the small public sets).
    attention_dropout: float = Field(default=0.0, ge=0, lt=1)
    # HSTU-style learned attention bias on the distance between positions and the time between plays.
    relative_bias: bool = False
    # Learned embeddings of absolute positions (counted from the newest play). Without them (and
    # with relative_bias or frequency_mix for order), every position is trained as if the sequence
    # ended there, as the served last position is.
    absolute_positions: bool = True
    time_buckets: int = Field(default=32, gt=0)
    # A track's vector is its own embedding plus its artist's (a public set's tags, in the bench):
    # a rarely played track borrows from its artist's other tracks.
    item_attributes: bool = True
    # BSARec's frequency branch, made causal (setlist.sequential.model): alpha of each block's
    # branch from the low-pass filter (0: attention only), and BSARec's c.
    frequency_mix: float = Field(default=0.0, ge=0, le=1)
    frequency_cutoff: int = Field(default=3, gt=0)
    # Each target its own example, trained at its last position only (S3-Rec's and BSARec's
    # regime; the frequency filter then sees the whole prefix, as BSARec's does). More steps per
    # epoch: for short sequences (a public set's), not the daily default.
    prefix_examples: bool = False
    # Softmax over negatives sampled per batch (0: the whole catalogue) or gBCE (gSASRec). Sampled
    # softmax is the default: on generated listening it reached validation NDCG@10 0.08 where gBCE
    # (256 negatives, t = 0.75) degraded from the first epoch; 512 negatives cost half the time of
    # the whole 4k-track catalogue for 0.08 against 0.09.
    loss: Literal["gbce", "softmax"] = "softmax"
    negatives: int = Field(default=512, ge=0)
    gbce_t: float = Field(default=0.75, ge=0, le=1)
    epochs: int = Field(default=20, gt=0)
    # Stop after this many epochs without a better validation NDCG@10 (0: never).
    patience: int = Field(default=3, ge=0)
    batch_size: int = Field(default=128, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    # Validate and keep an exponential moving average of the weights (decay per step; 0: the raw
    # weights). Off in the daily chain; bench/sequential.py sets it for the public sets.
    weight_average_decay: float = Field(default=0.0, ge=0, lt=1)
    shuffle_buffer: int = Field(default=4096, gt=0)
    # Batches are cut from pools of this many batches sorted by length (less padding: half the
    # work on ML-1M); 1: each batch a random mix of lengths, as the published recipes train.
    length_pool_batches: int = Field(default=16, gt=0)
    seed: int = 11
    # 0: PyTorch's default thread count.
    threads: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # TorchDistributor processes (GPUs with device cuda); local mode runs them on the driver.
    num_processes: int = Field(default=1, gt=0)
    # Training shards written per day (at least num_processes, so every process reads one).
    shards: int = Field(default=4, gt=0)
    # Users whose last listened play is held out to validate each epoch and to gate the model.
    validation_users: int = Field(default=1000, gt=0)
    train_in_daily: bool = True
    model_name: str = "setlist-sequential"
    # Promote a model whose validation NDCG@10 >= the champion's - gate_tolerance (same users).
    gate_tolerance: float = Field(default=0.005, ge=0)
    # Users scored per Arrow batch at inference.
    score_batch_users: int = Field(default=256, gt=0)
    exclude_played: bool = False
    top_n: int = Field(default=100, gt=0)

    @model_validator(mode="after")
    def _check_model(self) -> "SequentialConfig":
        if self.dim % self.heads:
            raise _invalid("candidates.sequential.dim", f"{self.dim} is not a multiple of heads={self.heads}")
        if self.loss == "gbce" and self.negatives == 0:
            raise _invalid("candidates.sequential.negatives", "gbce needs sampled negatives (> 0)")
        if self.shards < self.num_processes:
            raise _invalid("candidates.sequential.shards", f"{self.shards} shards for num_processes="
                           f"{self.num_processes}: every process needs one")
        return self


class GenerativeConfig(Section):
    """Generative retrieval with semantic IDs (setlist.generative): codes, decoder, training, gate.
    Off by default (not in candidates.sources) until it earns its place against the other sources."""
    # Listened plays of the last history_days days form each user's history, the latest
    # history_plays of them; users with fewer than min_sequence_items are not trained on.
    history_days: int = Field(default=28, gt=0)
    history_plays: int = Field(default=200, gt=1)
    min_sequence_items: int = Field(default=2, ge=2)
    # Semantic IDs: residual k-means over each track's embedding (its artist as content, next to
    # a truncated SVD of the track-by-user plays), levels codes of up to codebook_size values, plus
    # a disambiguation code for tracks that share a tuple.
    levels: int = Field(default=3, gt=0)
    codebook_size: int = Field(default=32, gt=1)
    embedding_dim: int = Field(default=32, gt=1)
    # The decoder (an encoder over the last max_items items' codes, a decoder writing the next).
    max_items: int = Field(default=20, gt=0)
    dim: int = Field(default=64, gt=0)
    heads: int = Field(default=4, gt=0)
    encoder_layers: int = Field(default=2, gt=0)
    decoder_layers: int = Field(default=2, gt=0)
    ff_dim: int = Field(default=256, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    # Relative item-distance attention bias instead of absolute slot embeddings (TIGER's T5 has
    # relative position bias).
    relative_slots: bool = False
    batch_size: int = Field(default=128, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    # As candidates.sequential.weight_average_decay.
    weight_average_decay: float = Field(default=0.0, ge=0, lt=1)
    epochs: int = Field(default=10, gt=0)
    # Stop after this many epochs without a better validation NDCG@10 (0: never).
    patience: int = Field(default=3, ge=0)
    # Beams kept per level; the source proposes the top_n best of them (top_n <= beam_size).
    beam_size: int = Field(default=100, gt=0)
    # Users whose last listened play is held out to validate each epoch and to gate the model.
    validation_users: int = Field(default=500, gt=0)
    seed: int = 11
    # 0: PyTorch's default thread count.
    threads: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    train_in_daily: bool = True
    model_name: str = "setlist-generative"
    # Promote a model whose validation NDCG@10 >= the champion's - gate_tolerance (same users).
    gate_tolerance: float = Field(default=0.005, ge=0)
    # Users decoded per Arrow batch at inference.
    score_batch_users: int = Field(default=256, gt=0)
    top_n: int = Field(default=100, gt=0)
    # Cold start (setlist.generative.cold_start): tracks the decoder was not trained on may take
    # up to cold_share of each user's top_n, matched to the beam's tracks on their first
    # cold_prefix_levels codes (cold_share 0: never).
    cold_share: float = Field(default=0.1, ge=0, le=1)
    cold_prefix_levels: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _check_model(self) -> "GenerativeConfig":
        if self.dim % self.heads:
            raise _invalid("candidates.generative.dim", f"{self.dim} is not a multiple of heads={self.heads}")
        if self.top_n > self.beam_size:
            raise _invalid("candidates.generative.top_n", f"{self.top_n} exceeds beam_size={self.beam_size}: "
                           "the beam returns at most beam_size tracks")
        if self.cold_prefix_levels > self.levels:
            raise _invalid("candidates.generative.cold_prefix_levels",
                           f"{self.cold_prefix_levels} exceeds levels={self.levels}: a prefix is at most every code")
        return self


class CandidatesConfig(Section):
    sources: list[Literal["als", "popularity", "colisten", "own_artists", "ease", "continuation",
                          "sequential", "generative"]] = Field(
        default_factory=lambda: ["als", "popularity", "colisten", "own_artists", "ease", "continuation",
                                 "sequential"],
        min_length=1)
    # Every source's top_n unless its own section sets one.
    top_n_per_source: int = Field(default=100, gt=0)
    # Publishing order until the ranker exists: earlier sources first.
    source_priority: list[str] = Field(
        default_factory=lambda: ["als", "ease", "sequential", "colisten", "continuation", "own_artists",
                                 "popularity"])
    # Listens read by the step (popularity window, co-listening sessions).
    listens_lookback_days: int = Field(default=28, gt=0)
    als: AlsConfig = AlsConfig()
    popularity: PopularityConfig = PopularityConfig()
    colisten: ColistenConfig = ColistenConfig()
    own_artists: OwnArtistsConfig = OwnArtistsConfig()
    ease: EaseConfig = EaseConfig()
    continuation: ContinuationConfig = ContinuationConfig()
    sequential: SequentialConfig = SequentialConfig()
    generative: GenerativeConfig = GenerativeConfig()

    SOURCE_SECTIONS: ClassVar[tuple[str, ...]] = ("als", "popularity", "colisten", "own_artists", "ease",
                                                  "continuation", "sequential", "generative")

    @model_validator(mode="before")
    @classmethod
    def _default_top_n(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        top_n = data.get("top_n_per_source", cls.model_fields["top_n_per_source"].default)
        for name in cls.SOURCE_SECTIONS:
            section = data.get(name, {})
            if isinstance(section, dict) and "top_n" not in section:
                data[name] = {**section, "top_n": top_n}
        return data

    @model_validator(mode="after")
    def _check_priority(self) -> "CandidatesConfig":
        unknown = sorted(set(self.source_priority) - set(self.SOURCE_SECTIONS))
        if unknown:
            raise ConfigError(f"candidates.source_priority: unknown sources {unknown}, "
                              f"expected some of {list(self.SOURCE_SECTIONS)}")
        return self


class FeaturesConfig(Section):
    """Ranking features (setlist.features), all from events before the candidate cutoff."""
    # Events read before the cutoff; the longest window must fit in it.
    history_days: int = Field(default=28, gt=0)
    # Activity and popularity counted over each of these trailing windows (days).
    windows_days: list[PositiveInt] = Field(default_factory=lambda: [1, 7, 28], min_length=1)
    # Track trend = daily plays in the short window / daily plays in the long window.
    trend_short_days: int = Field(default=1, gt=0)
    trend_long_days: int = Field(default=7, gt=0)
    # Side information where the data has it (HetRec): the user's tag profile (tags of the
    # artists they played) against the candidate's, and how many of the user's friends play it.
    tags: bool = False
    friends: bool = False

    @model_validator(mode="after")
    def _check_windows(self) -> "FeaturesConfig":
        longest = max([*self.windows_days, self.trend_long_days])
        if longest > self.history_days:
            raise ConfigError(f"features.windows_days / trend_long_days: window {longest} days is longer "
                              f"than features.history_days={self.history_days}")
        return self


class RankingConfig(Section):
    """LightGBM LambdaRank ranker (setlist.ranking) and its release gate."""
    # Graded relevance of a (user, surface, candidate) from the user's best event after the
    # cutoff: an early skip lowest, then nothing, a listen past the threshold, a completed
    # listen, a save. Evaluation counts grades above grade_none as relevant (gain = grade - grade_none).
    grade_skip: int = 0
    grade_none: int = 1
    grade_listen: int = 2
    grade_completed: int = 3
    grade_saved: int = 4
    # LightGBM's gain per grade (index = grade), set explicitly: its default grows as 2^grade.
    label_gain: list[NonNegative] = Field(default_factory=lambda: [0.0, 1.0, 3.0, 7.0, 15.0])
    # Labels: events in [cutoff, cutoff + label_days).
    label_days: int = Field(default=1, gt=0)
    # Per-surface labels: on a surface named here, an event must reach this grade to count (below
    # it, grade_none). Now Playing continues a session: a completed next track; Home: a long
    # (completed) listen or a save of a track new to the user (played tracks are not Home's
    # candidates, in training as in publishing, by publish.exclude_played).
    surface_min_grade: dict[str, int] = Field(default_factory=lambda: {"home": 3, "now_playing": 3})
    # One model with the surface as a feature ("shared"), one model per publishing surface
    # ("per_surface", served as one booster), or whichever scores better on the valid day ("auto").
    layout: Literal["auto", "shared", "per_surface"] = "auto"
    # Candidates per (user, surface) query, best source rank first; LightGBM refuses > 10,000.
    max_group_size: int = Field(default=500, gt=1, lt=10_000)
    # Rows brought to the driver (pandas) per day: whole (user, surface) groups, sampled by hash.
    max_rows_per_day: int = Field(default=300_000, gt=0)
    seed: int = 7
    num_boost_round: int = Field(default=200, gt=0)
    early_stopping_rounds: int = Field(default=20, gt=0)
    learning_rate: float = Field(default=0.05, gt=0)
    # LightGBM refuses a tree of one leaf.
    num_leaves: int = Field(default=31, gt=1)
    min_data_in_leaf: int = Field(default=20, ge=0)
    feature_fraction: float = Field(default=0.9, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    # 0 turns bagging off.
    bagging_freq: int = Field(default=1, ge=0)
    lambdarank_truncation_level: int = Field(default=20, gt=0)
    # 0: LightGBM's default (OpenMP's thread count).
    num_threads: int = Field(default=2, ge=0)
    # Daily run: on day D train on the candidates of D - train_lag_days, stop early on the
    # next day's and evaluate (and gate) on the day after that; every label is seen by D's end.
    train_in_daily: bool = True
    train_lag_days: int = Field(default=3, ge=3)
    # The gate promotes a model whose NDCG@k >= the champion's - gate_tolerance (same evaluation set).
    gate_tolerance: float = Field(default=0.005, ge=0)
    # Hyper-parameter search: every combination is trained on the training users and scored on
    # the validation users (never on the evaluation target); the best one is released.
    tuning_grid: dict[str, list[float]] = Field(default_factory=dict)
    split: "RankerSplitConfig" = Field(default_factory=lambda: RankerSplitConfig())

    @model_validator(mode="after")
    def _check_grades(self) -> "RankingConfig":
        grades = [self.grade_skip, self.grade_none, self.grade_listen, self.grade_completed, self.grade_saved]
        if grades != sorted(set(grades)) or grades[0] < 0:
            raise ConfigError(f"ranking.grade_*: expected strictly increasing non-negative grades "
                              f"skip < none < listen < completed < saved, got {grades}")
        if len(self.label_gain) <= max(grades):
            raise ConfigError(f"ranking.label_gain: {len(self.label_gain)} gains for grades up to "
                              f"{max(grades)}; expected one per grade 0..{max(grades)}")
        tunable = {"learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "bagging_fraction",
                   "lambdarank_truncation_level", "num_boost_round"}
        unknown = sorted(set(self.tuning_grid) - tunable)
        if unknown:
            raise ConfigError(f"ranking.tuning_grid: unknown parameter(s) {unknown}, expected some of "
                              f"{sorted(tunable)}")
        return self


class RankerSplitConfig(Section):
    """Labels for data without daily history (public data, ``setlist run-public``).

    Count data (no time): per user, a seeded ``holdout_fraction`` of the items (users with at
    least ``min_items``) become labels, the rest is the known part candidates and features come
    from. Timestamped data: one global cut at the ``time_quantile`` of all event times; labels
    are the events of the next ``evaluation.horizon_days``. Either way the split is persisted
    (``tables.ranker_split``) and logged, and ``valid_user_share`` of the labelled users are kept
    for early stopping and tuning.
    """
    holdout_fraction: float = Field(default=0.3, gt=0, lt=1)
    min_items: int = Field(default=4, ge=2)
    seed: int = 20261201
    time_quantile: float = Field(default=0.9, gt=0, lt=1)
    valid_user_share: float = Field(default=0.2, gt=0, lt=1)
    # Count data: a label item's grade by its play count among the held-out items.
    completed_quantile: float = Field(default=0.5, ge=0, le=1)
    saved_quantile: float = Field(default=0.9, ge=0, le=1)


class AirflowConfig(Section):
    """The daily DAG (airflow_dags/): its schedule and how tasks are submitted (the steps come
    from the step registry, ``setlist.steps``)."""
    dag_id: str = "setlist_daily"
    schedule: str = "@daily"
    start_date: IsoDate = "2026-11-01"
    catchup: bool = False
    # Days run one at a time, in order: a day's candidates read earlier days' listens.
    max_active_runs: int = Field(default=1, gt=0)
    retries: int = Field(default=2, ge=0)
    retry_delay_minutes: float = Field(default=5.0, ge=0)
    # Folder holding jobs/ and the virtualenv (relative: from the repository root).
    project_dir: str = "."
    venv: str = ".venv"
    # Extra spark-submit arguments before jobs/setlist_job.py (e.g. --py-files dist/setlist-*.whl on a cluster);
    # --master comes from spark.master.
    spark_submit_args: list[str] = Field(default_factory=list)


class OpeSimulatorConfig(Section):
    """The position-based response model that gives bench/ope.py its ground truth
    (setlist.ope.simulation): P(listen) = position_k ** -position_power * expit(base_logit +
    affinity_logit * true_affinity)."""
    position_power: float = Field(default=1.0, ge=0)
    base_logit: float = -3.0
    affinity_logit: float = 2.0
    seed: int = 20261202


class OpeConfig(Section):
    """Off-policy evaluation (``setlist ope``, setlist.ope): a policy's value is its expected
    listens in the first ``slate`` positions of a list; top-1 values position 1 alone."""
    slate: int = Field(default=10, gt=0)
    confidence: Probability = 0.95
    # An exposure's reward: a listen (rewards.listen_threshold_s) of its track by its user within
    # this many days after the day the list was published for.
    reward_days: int = Field(default=1, gt=0)
    # The doubly robust estimate's reward model is cross-fitted over this many folds of lists.
    reward_model_folds: int = Field(default=2, ge=2)
    # Bootstrap replicates over lists for the position-based estimators' intervals.
    bootstrap_resamples: int = Field(default=200, ge=20)
    # What --gate compares with the champion's logged (on-policy) value (bench/ope.py's headline).
    gate_estimator: Literal["pbm_dr", "pbm_ips", "dr", "snips", "ips"] = "pbm_dr"
    simulator: OpeSimulatorConfig = OpeSimulatorConfig()


class SetlistConfig(Section):
    spark: SparkConfig = SparkConfig()
    paths: PathsConfig = PathsConfig()
    tables: TablesConfig = TablesConfig()
    events: EventsConfig = EventsConfig()
    generator: GeneratorConfig = GeneratorConfig()
    rewards: RewardsConfig = RewardsConfig()
    candidates: CandidatesConfig = CandidatesConfig()
    publish: PublishConfig = PublishConfig()
    tracking: TrackingConfig = TrackingConfig()
    experiments: ExperimentsConfig = ExperimentsConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    importers: ImportersConfig = ImportersConfig()
    airflow: AirflowConfig = AirflowConfig()
    features: FeaturesConfig = FeaturesConfig()
    ranking: RankingConfig = RankingConfig()
    lab: LabConfig = LabConfig()
    ope: OpeConfig = OpeConfig()

    @model_validator(mode="after")
    def _check_surfaces(self) -> "SetlistConfig":
        # Surfaces are coded by their index in events.surfaces (features.surface_code): one
        # outside it would be scored as an unknown context.
        known = self.events.surfaces
        for key, named in (("publish.surfaces", self.publish.surfaces),
                           ("experiments.recommendation_surfaces", self.experiments.recommendation_surfaces)):
            unknown = [s for s in named if s not in known]
            if unknown:
                raise _invalid(key, f"unknown surface(s) {unknown}, expected some of events.surfaces {known}")
        return self


def _deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(override: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3); the value is read as YAML (numbers, lists, bools)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected dotted.key=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {override!r}: empty part in key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {key}: value {raw!r} is not valid YAML ({exc})") from exc
    except ValueError:
        # A scalar YAML cannot build (the "date" 2011-13-01): kept as text, so the key's own
        # check says what is expected.
        value = raw.strip()
    return parts, value


def _apply_override(data: dict, parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(parts)}: {part} is not a section")
        node = child
    node[parts[-1]] = value


# pydantic's bound errors, said as the allowed range.
_BOUNDS = {"greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
           "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
           "string_pattern_mismatch": "must match {pattern}",
           "too_short": "must have at least {min_length} item(s)",
           "too_long": "must have at most {max_length} item(s)"}


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
            continue
        if err["type"] in _BOUNDS:
            message = _BOUNDS[err["type"]].format(**err.get("ctx", {}))
        elif err["type"] in ("int_type", "float_type") and isinstance(value, bool):
            message = f"{err['msg']}, not a boolean"
        else:
            message = err["msg"]
        lines.append(f"config key '{key}': {message} (got {value!r})")
    return "; ".join(lines)


def load_config(files: list[str | Path] | None = None,
                overrides: list[str] | None = None) -> SetlistConfig:
    """Load ``conf/default.yaml`` (or ``files``), apply dotted overrides, validate."""
    paths = [Path(f) for f in (files or [DEFAULT_CONF_DIR / "default.yaml"])]
    data: dict = {}
    for path in paths:
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: a "date" such as 2011-13-01
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        data = _deep_merge(data, loaded)
    for override in overrides or []:
        _apply_override(data, *parse_override(override))
    try:
        return SetlistConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
