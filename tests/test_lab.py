"""The signal lab: variants checked before any work, paired bootstrap lifts, and a run on a tiny lake."""
import numpy as np
import pandas as pd
import pytest

from setlist import lab
from setlist.config import LabConfig
from setlist.errors import ConfigError
from setlist.pipeline import lab as lab_step

CFG = LabConfig(bootstrap_resamples=500)


def per_group(ndcg, surface="home"):
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(len(ndcg))], "surface": surface, "ndcg": ndcg})


@pytest.mark.parametrize("text, message", [
    ("noname", "expected NAME:KEY=VALUE"), ("x:", "expected NAME:KEY=VALUE"),
    ("baseline:rewards.save_weight=3", "names the config without overrides")])
def test_a_malformed_variant_is_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        lab_step.parse_variant(text)


@pytest.mark.parametrize("text, message", [
    ("v:rewards.save_wieght=3", "save_wieght"), ("v:lab.signals=[telepathy]", "telepathy"),
    ("v:paths.lake=/elsewhere", "may change only rewards")])
def test_a_variant_naming_an_unknown_key_or_signal_is_refused_by_name(text, message):
    with pytest.raises(ConfigError, match=message):
        lab_step.variant_config(None, [], lab_step.parse_variant(text))


def test_identical_lists_have_no_lift_and_a_clear_gain_a_ci_above_zero():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 0.9, 400)
    same = lab.compare(per_group(base), per_group(base), "same", ["home"], CFG)
    assert [x.surface for x in same] == ["home", lab.ALL_SURFACES]
    assert same[0].lift == 0.0
    better = lab.compare(per_group(base), per_group(np.minimum(base * 1.2 + rng.normal(0, 0.05, 400), 1)),
                         "better", ["home"], CFG)
    assert better[-1].ci_low > 0.1 and lab.winner(better + same) == "better"
    worse = lab.compare(per_group(base), per_group(base * 0.8), "worse", ["home"], CFG)
    assert worse[-1].ci_high < 0 and lab.winner(worse) is None


def test_pure_noise_differences_get_a_ci_covering_zero():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.1, 0.9, 300)
    covered = 0
    for seed in range(20):
        noisy = np.clip(base + np.random.default_rng(seed).normal(0, 0.1, 300), 0, 1)
        x = lab.compare(per_group(base), per_group(noisy), "noise", ["home"], CFG.model_copy(update={"seed": seed}))[-1]
        covered += x.ci_low <= 0 <= x.ci_high
    assert covered >= 17


def test_the_noise_signal_is_uniform_and_fixed_by_its_seed():
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(2000)], "track_id": "t1"})
    first, again, other = (lab.noise_signal(frame, s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert 0 <= first.min() and first.max() < 1 and abs(first.mean() - 0.5) < 0.03
    assert np.corrcoef(first, other)[0, 1] < 0.1
