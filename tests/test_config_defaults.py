"""conf/default.yaml and the typed defaults in setlist.config say the same thing, key by key.

Users read the YAML; code that builds a section directly (``RewardsConfig()``) gets the
pydantic defaults. Neither may drift from the other, and the YAML documents every key.
"""
from typing import Any

import yaml
from pydantic import BaseModel

from setlist.config import DEFAULT_CONF_DIR, CandidatesConfig, SetlistConfig, load_config

# Keys the YAML leaves out on purpose: each source's top_n is filled from
# candidates.top_n_per_source unless set, so writing it down would stop that override.
DERIVED_KEYS = {f"candidates.{source}.top_n" for source in CandidatesConfig.SOURCE_SECTIONS}


def differences(typed: Any, loaded: Any, key: str = "") -> list[str]:
    """Dotted keys (in field order) where two ``model_dump()`` trees differ, with both values."""
    if isinstance(typed, dict) and isinstance(loaded, dict):
        found = []
        for name in [*typed, *(k for k in loaded if k not in typed)]:
            dotted = f"{key}.{name}" if key else str(name)
            if name not in typed or name not in loaded:
                found.append(f"{dotted}: only in {'the YAML' if name in loaded else 'config.py'}")
            else:
                found += differences(typed[name], loaded[name], dotted)
        return found
    if typed != loaded or type(typed) is not type(loaded):
        return [f"{key}: config.py has {typed!r}, conf/default.yaml has {loaded!r}"]
    return []


def undocumented(model: type[BaseModel], yaml_section: dict, key: str = "") -> list[str]:
    """Fields of ``model`` (recursing into sections) that ``yaml_section`` does not write down."""
    missing = []
    for name, field in model.model_fields.items():
        dotted = f"{key}.{name}" if key else name
        if dotted in DERIVED_KEYS:
            continue
        if name not in yaml_section:
            missing.append(dotted)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            missing += undocumented(field.annotation, yaml_section[name], dotted)
    return missing


def test_differences_names_the_first_differing_dotted_key():
    typed = {"a": {"b": 1, "c": [1, 2]}, "d": 1.0}
    assert differences(typed, {"a": {"b": 1, "c": [1, 3]}, "d": 1}) == [
        "a.c: config.py has [1, 2], conf/default.yaml has [1, 3]",
        "d: config.py has 1.0, conf/default.yaml has 1"]
    assert differences(typed, typed) == []


def test_typed_defaults_equal_conf_default_yaml():
    found = differences(SetlistConfig().model_dump(), load_config().model_dump())
    assert not found, f"first difference: {found[0]} ({len(found)} in all: {found})"


def test_every_typed_key_is_written_in_conf_default_yaml():
    written = yaml.safe_load((DEFAULT_CONF_DIR / "default.yaml").read_text())
    missing = undocumented(SetlistConfig, written)
    assert not missing, f"keys missing from conf/default.yaml: {missing}"


def test_derived_keys_still_follow_top_n_per_source():
    cfg = load_config(overrides=["candidates.top_n_per_source=7"])
    assert {getattr(cfg.candidates, source).top_n for source in CandidatesConfig.SOURCE_SECTIONS} == {7}
