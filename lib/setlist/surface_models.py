"""One ranker per publishing surface, served as one LightGBM booster.

``ranking.layout=per_surface`` trains a LambdaRank model on each publishing surface's groups
alone. Publishing, the registry, the gate and the compiled scorer all handle one booster, so
the surface models are merged into one (``merge_by_surface``): every tree of surface s gets two
new nodes above its root, ``surface_code <= code(s) - 0.5`` and ``surface_code <= code(s) + 0.5``,
that send every row of another surface to a leaf worth 0. A row of surface s therefore scores
exactly the sum of s's own trees (tested to 1e-9 against each surface model's ``predict``), and a
row of a surface without a model scores 0.

LightGBM has no API to combine boosters (its ``forcedsplits_filename`` did not force these root
splits when tried, LightGBM 4.7), so the merge edits the documented v4 model text here.
"""
from __future__ import annotations

import lightgbm as lgb
import pandas as pd

from setlist.config import RankingConfig
from setlist.errors import SetlistError
from setlist.ranking import fit_ranker

# Per-node arrays of a tree (one value per split) and per-leaf arrays (one per leaf).
_NODE_KEYS = ("split_feature", "split_gain", "threshold", "decision_type", "internal_value",
              "internal_weight", "internal_count")
_LEAF_KEYS = ("leaf_value", "leaf_weight", "leaf_count")
# Numerical split, missing values go left (LightGBM's decision_type bit flags).
_NUMERICAL_DEFAULT_LEFT = "2"


def _split_model(text: str) -> tuple[list[str], list[dict[str, str]], str]:
    """Model text -> (header lines, trees as ordered key -> value, the tail from 'end of trees')."""
    head, _, rest = text.partition("\nTree=")
    body, _, tail = ("Tree=" + rest).partition("end of trees")
    trees = []
    for block in body.strip().split("\n\n"):
        lines = [line for line in block.strip().splitlines() if line]
        trees.append(dict(line.split("=", 1) for line in lines))
    return head.strip().splitlines(), trees, "end of trees" + tail


def _gated(tree: dict[str, str], feature: int, code: int) -> dict[str, str]:
    """``tree`` under two new nodes that pass only rows with feature == code; others score 0."""
    leaves = int(tree["num_leaves"])
    values = {k: tree[k].split(" ") if k in tree else [] for k in (*_NODE_KEYS, *_LEAF_KEYS,
                                                                    "left_child", "right_child")}
    shift = lambda child: str(int(child) + 2 if int(child) >= 0 else int(child))  # noqa: E731
    below, above = ~leaves, ~(leaves + 1)  # the two new leaves, after the tree's own
    first_left = "2" if leaves > 1 else str(~0)  # the old root, or the old tree's only leaf
    out = dict(tree)
    out.update({
        "num_leaves": str(leaves + 2),
        "split_feature": " ".join([str(feature), str(feature), *values["split_feature"]]),
        "split_gain": " ".join(["0", "0", *values["split_gain"]]),
        "threshold": " ".join([repr(code - 0.5), repr(code + 0.5), *values["threshold"]]),
        "decision_type": " ".join([_NUMERICAL_DEFAULT_LEFT] * 2 + values["decision_type"]),
        "left_child": " ".join([str(below), first_left, *map(shift, values["left_child"])]),
        "right_child": " ".join(["1", str(above), *map(shift, values["right_child"])]),
        "internal_value": " ".join(["0", "0", *values["internal_value"]]),
        "internal_weight": " ".join(["0", "0", *values["internal_weight"]]),
        "internal_count": " ".join(["0", "0", *values["internal_count"]]),
        "leaf_value": " ".join([*values["leaf_value"], "0", "0"]),
        "leaf_weight": " ".join([*values["leaf_weight"], "0", "0"]),
        "leaf_count": " ".join([*values["leaf_count"], "0", "0"]),
    })
    order = ["num_leaves", "num_cat", *_NODE_KEYS[:4], "cat_boundaries", "cat_threshold", "left_child",
             "right_child", *_LEAF_KEYS, *_NODE_KEYS[4:], "is_linear", "shrinkage"]
    return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}


def merge_by_surface(boosters: dict[int, lgb.Booster], surface_feature: str) -> lgb.Booster:
    """Boosters by surface code (same feature list) -> one booster scoring each surface's rows
    with that surface's trees (the module doc)."""
    names = {tuple(b.feature_name()) for b in boosters.values()}
    if len(names) != 1:
        raise SetlistError("merge_by_surface: the surface models have different feature lists")
    features = list(names.pop())
    if surface_feature not in features:
        raise SetlistError(f"merge_by_surface: the models lack the surface feature '{surface_feature}'")
    feature = features.index(surface_feature)
    header, trees, tail = None, [], ""
    for code, booster in sorted(boosters.items()):
        head, own, tail = _split_model(booster.model_to_string())
        header = header or head
        trees += [_gated(tree, feature, code) for tree in own]
    infos = next(line for line in header if line.startswith("feature_infos=")).split("=", 1)[1].split(" ")
    infos[feature] = f"[{min(boosters)}:{max(boosters)}]"
    lines = [("feature_infos=" + " ".join(infos)) if line.startswith("feature_infos=") else line
             for line in header if not line.startswith("tree_sizes=")]
    blocks = ["\n".join([f"Tree={i}", *(f"{k}={v}" for k, v in tree.items() if k != "Tree")])
              for i, tree in enumerate(trees)]
    # The tail's importances and parameters describe one surface model only: keep just its end.
    end = tail[tail.index("pandas_categorical"):] if "pandas_categorical" in tail else ""
    text = "\n".join(lines) + "\n\n" + "\n\n\n".join(blocks) + "\n\n\nend of trees\n\n" + end
    return lgb.Booster(model_str=text)


def fit_per_surface(train: pd.DataFrame, valid: pd.DataFrame, features: list[str], surface_codes: dict[str, int],
                    surface_feature: str, cfg: RankingConfig, eval_k: int) -> lgb.Booster:
    """A LambdaRank model per surface of ``surface_codes`` on its own groups, merged into one booster.
    ``surface_feature`` is numerical here: the merge splits on it."""
    boosters = {}
    for surface, code in surface_codes.items():
        own_train, own_valid = train[train["surface"] == surface], valid[valid["surface"] == surface]
        if own_train.empty or own_valid.empty:
            raise SetlistError(f"per-surface ranker: surface '{surface}' has no labelled groups on the train "
                               f"or valid day; use ranking.layout=shared")
        boosters[code] = fit_ranker(own_train, own_valid, features, [], cfg, eval_k)
    return merge_by_surface(boosters, surface_feature)
