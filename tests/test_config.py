import pytest

from setlist.config import load_config
from setlist.errors import ConfigError
from setlist.pipeline import run_public


def test_defaults_load_from_conf_default_yaml():
    cfg = load_config()
    assert cfg.rewards.listen_threshold_s == 30.0
    assert "now_playing" in cfg.events.surfaces


def test_dotted_override_is_typed():
    cfg = load_config(overrides=["rewards.skip_weight=-2", "events.surfaces=[home, radio]",
                                 "publish.surfaces=[radio]"])
    assert cfg.rewards.skip_weight == -2.0
    assert cfg.events.surfaces == ["home", "radio"]
    assert cfg.publish.surfaces == ["radio"]


def test_valid_overrides_within_range_still_load():
    cfg = load_config(overrides=["publish.top_n=1", "events.late_arrival_hours=0", "rewards.skip_weight=0",
                                 "generator.days=1", "rewards.half_life_days=7", "tables.listens=listens_v2",
                                 "generator.repeat_share=1", "candidates.top_n_per_source=3"])
    assert cfg.publish.top_n == 1
    assert cfg.rewards.skip_weight == 0.0
    # An int where a float is expected is still a number.
    assert cfg.rewards.half_life_days == 7.0 and isinstance(cfg.rewards.half_life_days, float)
    assert cfg.tables.listens == "listens_v2"
    assert cfg.candidates.als.top_n == cfg.candidates.ease.top_n == 3


@pytest.mark.parametrize("dataset", sorted(run_public.PROFILES))
def test_public_profiles_load(dataset):
    cfg = load_config(run_public.config_files(dataset, None))
    assert cfg.publish.surfaces == ["library"]


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'rewards.skp_weight'"):
        load_config(overrides=["rewards.skp_weight=1"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="config key 'rewards.half_life_days'"):
        load_config(overrides=["rewards.half_life_days=soon"])


# (override, dotted key the message names, allowed range it states)
OUT_OF_RANGE = [
    ("rewards.skip_weight=true", "rewards.skip_weight", "not a boolean"),
    ("rewards.skip_weight=0.5", "rewards.skip_weight", "must be <= 0"),
    ("rewards.half_life_days=yes", "rewards.half_life_days", "not a boolean"),
    ("rewards.lookback_days=0", "rewards.lookback_days", "must be > 0"),
    ("rewards.completion_ratio=1.5", "rewards.completion_ratio", "must be <= 1"),
    ("candidates.als.exclude_played=1", "candidates.als.exclude_played", "valid boolean"),
    ("publish.top_n=0", "publish.top_n", "must be > 0"),
    ("publish.top_n=-3", "publish.top_n", "must be > 0"),
    ("publish.top_n=5.5", "publish.top_n", "valid integer"),
    ("publish.surfaces=[home, jukebox]", "publish.surfaces", "expected some of events.surfaces"),
    ("publish.surfaces=[]", "publish.surfaces", "at least 1"),
    ("experiments.recommendation_surfaces=[homepage]", "experiments.recommendation_surfaces",
     "expected some of events.surfaces"),
    ("events.late_arrival_hours=-48", "events.late_arrival_hours", "must be >= 0"),
    ("events.surfaces=[]", "events.surfaces", "at least 1"),
    ("tables.listens=", "tables.listens", "must match ^[A-Za-z0-9_]+$"),
    ("tables.ranked_recs=../../etc", "tables.ranked_recs", "must match ^[A-Za-z0-9_]+$"),
    ("tables.candidates=a/b", "tables.candidates", "must match"),
    ("importers.tag_assignments_table=../tags", "importers.tag_assignments_table", "must match"),
    ("importers.rating_skip_max=4", "importers.rating_skip_max", "must be < importers.rating_completed_min"),
    ("importers.counts_ds=2011-13-01", "importers.counts_ds", "yyyy-MM-dd"),
    ("generator.days=0", "generator.days", "must be >= 1"),
    ("generator.n_users=0", "generator.n_users", "must be > 0"),
    ("generator.n_artists=-1", "generator.n_artists", "must be > 0"),
    ("generator.repeat_share=1.2", "generator.repeat_share", "must be <= 1"),
    ("generator.save_rate=0", "generator.save_rate", "must be > 0"),
    ("generator.surface_mix.home=-0.1", "generator.surface_mix.home", "must be >= 0"),
    ("generator.hourly_profile=[1, 2]", "generator.hourly_profile", "at least 24"),
    ("generator.skip_within_10s=0.1", "generator.skip_within_5s/10s/30s", "5s <= 10s <= 30s <= target"),
    ("generator.track_duration_min_s=1000", "generator.track_duration_min_s",
     "must be < generator.track_duration_max_s"),
    ("generator.start_date=soon", "generator.start_date", "yyyy-MM-dd"),
    ("candidates.top_n_per_source=0", "candidates.top_n_per_source", "must be > 0"),
    ("candidates.als.top_n=0", "candidates.als.top_n", "must be > 0"),
    ("candidates.als.rank=0", "candidates.als.rank", "must be > 0"),
    ("candidates.als.max_iter=0", "candidates.als.max_iter", "must be > 0"),
    ("candidates.popularity.window_days=0", "candidates.popularity.window_days", "must be > 0"),
    ("candidates.colisten.window_plays=0", "candidates.colisten.window_plays", "must be > 0"),
    ("candidates.sources=[]", "candidates.sources", "at least 1"),
    ("features.windows_days=[0, 7]", "features.windows_days.0", "must be > 0"),
    ("evaluation.recall_ks=[-5]", "evaluation.recall_ks.0", "must be > 0"),
    ("ranking.learning_rate=0", "ranking.learning_rate", "must be > 0"),
    ("ranking.num_leaves=1", "ranking.num_leaves", "must be > 1"),
    ("ranking.feature_fraction=1.5", "ranking.feature_fraction", "must be <= 1"),
    ("experiments.alpha=1", "experiments.alpha", "must be < 1"),
    ("experiments.simulator.n_users=0", "experiments.simulator.n_users", "must be > 0"),
    ("spark.shuffle_partitions=0", "spark.shuffle_partitions", "must be > 0"),
]


@pytest.mark.parametrize(("override", "key", "allowed"), OUT_OF_RANGE, ids=[o for o, _, _ in OUT_OF_RANGE])
def test_out_of_range_value_is_refused_naming_key_and_range(override, key, allowed):
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=[override])
    message = str(caught.value)
    assert f"config key '{key}'" in message
    assert allowed in message


def test_bad_value_in_a_file_is_refused_too(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("publish:\n  top_n: 0\n")
    with pytest.raises(ConfigError, match=r"config key 'publish.top_n': must be > 0 \(got 0\)"):
        load_config([load_config.__globals__["DEFAULT_CONF_DIR"] / "default.yaml", extra])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_config([tmp_path / "nope.yaml"])


def test_later_file_wins(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("rewards:\n  save_weight: 5\n")
    cfg = load_config([load_config.__globals__["DEFAULT_CONF_DIR"] / "default.yaml", extra])
    assert cfg.rewards.save_weight == 5.0
    assert cfg.rewards.listen_weight == 1.0


def test_unquoted_dates_are_read_as_yyyy_mm_dd(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("importers:\n  counts_ds: 2011-06-30\n")
    cfg = load_config([load_config.__globals__["DEFAULT_CONF_DIR"] / "default.yaml", extra],
                      overrides=["generator.start_date=2026-12-01"])
    assert cfg.importers.counts_ds == "2011-06-30"
    assert cfg.generator.start_date == "2026-12-01"
