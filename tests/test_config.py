import pytest

from setlist.config import load_config
from setlist.errors import ConfigError


def test_defaults_load_from_conf_default_yaml():
    cfg = load_config()
    assert cfg.rewards.listen_threshold_s == 30.0
    assert "now_playing" in cfg.events.surfaces


def test_dotted_override_is_typed():
    cfg = load_config(overrides=["rewards.skip_weight=-2", "events.surfaces=[home, radio]"])
    assert cfg.rewards.skip_weight == -2.0
    assert cfg.events.surfaces == ["home", "radio"]


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'rewards.skp_weight'"):
        load_config(overrides=["rewards.skp_weight=1"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="config key 'rewards.half_life_days'"):
        load_config(overrides=["rewards.half_life_days=soon"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_config([tmp_path / "nope.yaml"])


def test_later_file_wins(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("rewards:\n  save_weight: 5\n")
    cfg = load_config([load_config.__globals__["DEFAULT_CONF_DIR"] / "default.yaml", extra])
    assert cfg.rewards.save_weight == 5.0
    assert cfg.rewards.listen_weight == 1.0
