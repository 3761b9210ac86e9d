"""Sequence shards -> model inputs: the streaming dataset the trainer reads, and its examples.

A shard is a Parquet file of sequence records (:data:`SEQUENCE_COLUMNS`, written by the Spark
sequence builder or by :func:`write_shards`): ``items`` (vocabulary indices, see
:mod:`.model`), ``surfaces`` (codes, 0 = none), ``outcomes`` (1 skipped, 2 listened) and
``gaps`` (seconds since the user's previous play), all of one length, oldest play first.

:class:`SequenceShards` streams the shards in record batches (never a whole shard in memory)
through a seeded shuffle buffer; under ``torch.distributed`` each process reads its own files.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset

from setlist.sequential.model import FIRST_ITEM, LISTENED, PAD

SEQUENCE_COLUMNS = ["items", "surfaces", "outcomes", "gaps"]
SHARD_SCHEMA = pa.schema([("user_id", pa.string()), ("items", pa.list_(pa.int32())),
                          ("surfaces", pa.list_(pa.int8())), ("outcomes", pa.list_(pa.int8())),
                          ("gaps", pa.list_(pa.float32()))])


def _left_padded(values, length: int, dtype) -> np.ndarray:
    out = np.zeros(length, dtype=dtype)
    values = np.asarray(values, dtype=dtype)[-length:]
    if len(values):
        out[length - len(values):] = values
    return out


def model_input(items, surfaces, outcomes, gaps, max_len: int) -> dict[str, np.ndarray]:
    """The last ``max_len`` plays as left-padded arrays; ``times`` = seconds since the first kept play."""
    items, gaps = list(items)[-max_len:], np.asarray(gaps, dtype=np.float64)[-max_len:]
    times = np.cumsum(np.concatenate([[0.0], gaps[1:]])) if len(gaps) else gaps
    return {"items": _left_padded(items, max_len, np.int64),
            "surfaces": _left_padded(list(surfaces)[-max_len:], max_len, np.int64),
            "outcomes": _left_padded(list(outcomes)[-max_len:], max_len, np.int64),
            "times": _left_padded(times, max_len, np.float32)}


def training_examples(items, surfaces, outcomes, gaps, max_len: int, prefixes: bool = False):
    """A record -> its training examples: windows of ``max_len + 1`` plays, the newest ending
    with the last play and each earlier one ending where the next begins, so every transition
    of a sequence longer than ``max_len`` is a target exactly once per epoch (a single window
    kept only the latest ``max_len``: half of S3-Rec LastFM's plays were never trained on).
    Inputs are a window's plays but its last; targets are each next play where it was listened
    to and is a known item (PAD elsewhere, no loss there). Windows without a target are dropped.

    ``prefixes``: each target of a window is its own example instead, the plays before it
    moved to the last columns and the target at the last position only (S3-Rec's and BSARec's
    regime: every example is trained where serving reads, and nothing after a target is input)."""
    items, outcomes = np.asarray(items, dtype=np.int64), np.asarray(outcomes, dtype=np.int64)
    surfaces, gaps = list(surfaces), list(gaps)
    end = len(items)
    while end >= 2:
        window = slice(max(0, end - max_len - 1), end)
        example = model_input(items[window][:-1], surfaces[window][:-1], outcomes[window][:-1],
                              gaps[window][:-1], max_len)
        nxt, nxt_outcome = items[window][1:], outcomes[window][1:]
        targets = np.where((nxt_outcome == LISTENED) & (nxt >= FIRST_ITEM), nxt, PAD)
        if targets.any():
            example["targets"] = _left_padded(targets, max_len, np.int64)
            yield from _prefix_examples(example, max_len) if prefixes else [example]
        end -= max_len


def _prefix_examples(example: dict[str, np.ndarray], max_len: int):
    for position in np.flatnonzero(example["targets"]):
        prefix = {key: _left_padded(values[:position + 1], max_len, values.dtype) for key, values in example.items()}
        prefix["targets"][:-1] = PAD
        yield prefix


class SequenceShards(IterableDataset):
    """Training examples streamed from Parquet shards; ``set_epoch`` reseeds the order."""

    def __init__(self, files: list[str], max_len: int, seed: int = 0, shuffle_buffer: int = 4096,
                 batch_rows: int = 1024, prefixes: bool = False):
        super().__init__()
        if not files:
            raise ValueError("SequenceShards: no shard files to read")
        # In the caller's order (train_sequential orders shards by content, not by their random
        # names), so that the seeded shuffle gives a rerun the same stream.
        self.files, self.max_len, self.seed = list(files), max_len, seed
        self.shuffle_buffer, self.batch_rows, self.epoch, self.prefixes = shuffle_buffer, batch_rows, 0, prefixes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_files(self) -> list[str]:
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        files = self.files[rank::world] or self.files[rank % len(self.files)::len(self.files)]
        random.Random(self.seed * 1009 + self.epoch).shuffle(files)
        return files

    def _examples(self):
        for path in self._my_files():
            for batch in pq.ParquetFile(_local(path)).iter_batches(batch_size=self.batch_rows,
                                                                   columns=SEQUENCE_COLUMNS):
                columns = [batch.column(name).to_pylist() for name in SEQUENCE_COLUMNS]
                for record in zip(*columns):
                    yield from training_examples(*record, self.max_len, self.prefixes)

    def __iter__(self):
        rng = random.Random(self.seed * 7919 + self.epoch)
        buffer: list = []
        for example in self._examples():
            if len(buffer) < self.shuffle_buffer:
                buffer.append(example)
                continue
            index = rng.randrange(len(buffer))
            yield buffer[index]
            buffer[index] = example
        rng.shuffle(buffer)
        yield from buffer


def _local(path: str) -> str:
    return path[len("file:"):] if path.startswith("file:") else path


def write_shards(records: pa.Table, folder: str | Path, shards: int) -> list[str]:
    """Sequence records (:data:`SHARD_SCHEMA`) -> ``shards`` Parquet files under ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = records.cast(SHARD_SCHEMA)
    size = -(-records.num_rows // shards)
    paths = []
    for shard in range(shards):
        part = records.slice(shard * size, size)
        if part.num_rows:
            path = folder / f"part-{shard:05d}.parquet"
            pq.write_table(part, path)
            paths.append(str(path))
    return paths
