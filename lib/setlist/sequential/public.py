"""Public next-item benchmarks for the sequential model, read in place from ``shared/data``.

Each loader returns a :class:`PublicSet`: training shards (written with
:func:`~setlist.sequential.data.write_shards` under a scratch folder, never into the repo), a
validation set and one or more test sets built with
:func:`~setlist.sequential.training.validation_set`. Protocol choices (those of SASRec,
S3-Rec, BSARec and gSASRec, so the published tables compare):

- **Leave-one-out.** Per user, the last item is the test target (input ``items[:-1]``), the
  second-to-last the validation target (input ``items[:-2]``); the model trains on
  ``items[:-2]`` (every position of it predicts its next item), so neither target is seen.
- **Full ranking** over every item of the catalogue, the user's earlier items (their input)
  excluded (``exclude_seen=True``, as the S3-Rec / FMLP-Rec / BSARec evaluation code does);
  ties count in the target's favour (:mod:`.metrics`).
- **LastFM, 99 negatives** (S3-Rec's sampled table): the target ranked among the fixed 99
  negatives of ``LastFM_sample.txt``, target first in the candidates.
- **Item ids**: the files number items from 1; we add 1 so the first real item is
  :data:`~setlist.sequential.model.FIRST_ITEM` (0 pads, 1 is the unknown index). Every play
  is ``listened`` (outcome 2), surface 0 ("none"), gap 0 s (the files have order, no times).
- **MovieLens-1M** (``movielens_1m_sasrec_gsasrec_split``, the SASRec ``ml-1m.txt`` as split
  by gSASRec-pytorch): training is ``train_input.txt`` (``items[:-2]``; ``items[:-3]`` for
  gSASRec's 512 validation users). The full sequence is known for 3,261 users only (for the
  other 2,779 exactly ``items[-2]`` is missing), so two test sets are built:
  ``option_a`` (the README's option (a), the standard protocol): the 3,261 users with full
  sequences, ``items[:-1] -> items[-1]``; ``option_b``: all 6,040 users, ``items[:-2] ->
  items[-1]`` (one step skipped). Validation is ``items[:-2] -> items[-2]`` on the 3,261.
  Published ML-1M figures use all 6,040 users with the full ``items[:-1]`` input.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from setlist.sequential.data import SHARD_SCHEMA, write_shards
from setlist.sequential.model import FIRST_ITEM, LISTENED
from setlist.sequential.training import validation_set

SHARED_DATA = Path(os.environ.get("SETLIST_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared/data"))
if not SHARED_DATA.exists():
    SHARED_DATA = Path("/work/shared/data")
SHIFT = FIRST_ITEM - 1  # file item 1 -> index FIRST_ITEM

LASTFM = "lastfm_s3rec_seq"
BEAUTY = "amazon_beauty_s3rec_seq"
ML1M = "movielens_1m_sasrec_gsasrec_split"
DATASETS = {"lastfm": LASTFM, "beauty": BEAUTY, "ml1m": ML1M}


@dataclass
class PublicSet:
    name: str
    num_items: int  # vocabulary size: PAD, UNKNOWN and every real item
    shard_files: list[str]
    validation: dict
    tests: dict[str, dict]  # protocol -> evaluation set (full ranking unless it has "candidates")
    train_users: int
    train_items: int  # interactions in the training shards
    notes: dict[str, str] = field(default_factory=dict)  # protocol -> who is evaluated, how
    # (item indices, attribute indices) pairs from the set's *_item2attributes.json; None without one.
    item_attributes: tuple[np.ndarray, np.ndarray] | None = None


def read_attributes(path: Path) -> dict[int, list[int]]:
    """S3-Rec's ``*_item2attributes.json`` -> {shifted item: attribute ids} (tags, brand, categories)."""
    with open(path) as handle:
        return {int(item) + SHIFT: list(values) for item, values in json.load(handle).items()}


def attribute_pairs(attributes: dict[int, list[int]], num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """{item: attribute ids} -> (item indices, dense attribute indices), items inside the vocabulary."""
    pairs = sorted((item, value) for item, values in attributes.items() if FIRST_ITEM <= item < num_items
                   for value in set(values))
    numbered = {value: index for index, value in enumerate(sorted({value for _, value in pairs}))}
    return (np.array([item for item, _ in pairs], dtype=np.int64),
            np.array([numbered[value] for _, value in pairs], dtype=np.int64))


def read_lines(path: Path, user_column: bool = True) -> dict[int, list[int]]:
    """``user item item ...`` lines (or item-only lines, user = 1-based line number) ->
    {user: shifted items}, file order kept."""
    out: dict[int, list[int]] = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            values = [int(v) for v in line.split()]
            if not values and user_column:
                continue
            user, items = (values[0], values[1:]) if user_column else (number, values)
            out[user] = [item + SHIFT for item in items]
    return out


def _plays(items) -> tuple[list, list, list, list]:
    n = len(items)
    return list(items), [0] * n, [LISTENED] * n, [0.0] * n


def _held_out(histories: dict[int, list[int]], targets: dict[int, int], max_len: int, candidates=None) -> dict:
    users = sorted(targets)
    rows = [(*_plays(histories[u]), targets[u]) for u in users]
    evaluation = validation_set(rows, max_len, None if candidates is None else [candidates[u] for u in users])
    evaluation["users"] = np.asarray(users)
    return evaluation


def _shards(train: dict[int, list[int]], folder: Path, shards: int) -> tuple[list[str], int, int]:
    rows = [dict(zip(("items", "surfaces", "outcomes", "gaps"), _plays(items)), user_id=str(user))
            for user, items in sorted(train.items()) if len(items) >= 2]
    table = pa.Table.from_pylist(rows, schema=SHARD_SCHEMA)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    return write_shards(table, folder, shards), len(rows), sum(len(r["items"]) for r in rows)


def _leave_one_out(name: str, sequences: dict[int, list[int]], folder: Path, max_len: int, shards: int,
                   negatives: dict[int, list[int]] | None = None,
                   attributes: dict[int, list[int]] | None = None) -> PublicSet:
    sequences = {u: s for u, s in sequences.items() if len(s) >= 3}
    num_items = max(max(s) for s in sequences.values()) + 1
    if negatives:
        num_items = max(num_items, max(max(n) for n in negatives.values()) + 1)
    files, users, items = _shards({u: s[:-2] for u, s in sequences.items()}, folder, shards)
    validation = _held_out({u: s[:-2] for u, s in sequences.items()}, {u: s[-2] for u, s in sequences.items()},
                           max_len)
    history = {u: s[:-1] for u, s in sequences.items()}
    target = {u: s[-1] for u, s in sequences.items()}
    tests = {"full": _held_out(history, target, max_len)}
    notes = {"full": f"all {len(sequences):,} users, items[:-1] -> items[-1], full ranking, seen excluded"}
    if negatives is not None:
        candidates = {u: [target[u], *negatives[u]] for u in sequences}
        tests["sampled"] = _held_out(history, target, max_len, candidates)
        notes["sampled"] = f"all {len(sequences):,} users, target vs the file's 99 negatives"
    pairs = None if attributes is None else attribute_pairs(attributes, num_items)
    return PublicSet(name, num_items, files, validation, tests, users, items, notes, pairs)


def lastfm(folder: Path, max_len: int = 50, shards: int = 4) -> PublicSet:
    """S3-Rec's LastFM: 1,090 users, 3,646 items; full ranking and the 99-negatives protocol."""
    root = SHARED_DATA / LASTFM
    sequences = read_lines(root / "LastFM.txt")
    negatives = read_lines(root / "LastFM_sample.txt")
    if set(negatives) != set(sequences) or any(len(n) != 99 for n in negatives.values()):
        raise ValueError("LastFM_sample.txt: expected 99 negatives for every user of LastFM.txt")
    return _leave_one_out("lastfm", sequences, folder, max_len, shards, negatives,
                          read_attributes(root / "LastFM_item2attributes.json"))


def beauty(folder: Path, max_len: int = 50, shards: int = 4) -> PublicSet:
    """S3-Rec's Amazon Beauty: 22,363 users, 12,101 items; full ranking only (no negatives file)."""
    root = SHARED_DATA / BEAUTY
    return _leave_one_out("beauty", read_lines(root / "Beauty.txt"), folder, max_len, shards,
                          attributes=read_attributes(root / "Beauty_item2attributes.json"))


def movielens_1m(folder: Path, max_len: int = 200, shards: int = 4) -> PublicSet:
    """gSASRec's ML-1M split: train on train_input.txt; test options (a) and (b) (module docstring)."""
    root = SHARED_DATA / ML1M
    train = read_lines(root / "train_input.txt", user_column=False)
    last = {u: items[0] for u, items in read_lines(root / "test_output.txt", user_column=False).items()}
    full = read_lines(root / "sas_full_sequences_known.txt")
    for user, sequence in full.items():
        if sequence[-1] != last[user] or train[user] not in (sequence[:-2], sequence[:-3]):
            raise ValueError(f"{ML1M}: user {user}'s full sequence disagrees with train_input/test_output")
    num_items = 3416 + FIRST_ITEM
    files, users, items = _shards(train, folder, shards)
    validation = _held_out({u: s[:-2] for u, s in full.items()}, {u: s[-2] for u, s in full.items()}, max_len)
    # items[:-2] of every user: the full sequence's where known, else train_input (= items[:-2]
    # for every user outside gSASRec's validation users, who all have full sequences).
    before_last_two = {u: full[u][:-2] if u in full else train[u] for u in train}
    tests = {"option_a": _held_out({u: s[:-1] for u, s in full.items()}, {u: last[u] for u in full}, max_len),
             "option_b": _held_out(before_last_two, last, max_len)}
    notes = {"option_a": f"option (a): the {len(full):,} users with full sequences, items[:-1] -> items[-1]",
             "option_b": f"option (b): all {len(train):,} users, items[:-2] -> items[-1] (items[-2] skipped)"}
    return PublicSet("ml1m", num_items, files, validation, tests, users, items, notes)


LOADERS = {"lastfm": lastfm, "beauty": beauty, "ml1m": movielens_1m}


def load(name: str, folder: Path, max_len: int, shards: int = 4) -> PublicSet:
    return LOADERS[name](Path(folder), max_len=max_len, shards=shards)
