"""The raw-event contract: output columns, identifier layouts, time units.

Identifiers are a prefix and a zero-padded index (``u0000001``, ``t0000001``, ``a00001``);
the index is the row of the user, track or artist in the generator's world, so ids parse
back to rows (:func:`parse_ids`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["event_id", "user_id", "track_id", "artist_id", "ts", "ms_played",
           "track_duration_ms", "reason_start", "reason_end", "surface", "platform",
           "shuffle", "skipped", "saved"]

# Identifier layouts of the raw-event contract (prefix, digits).
USER_ID = ("u", 7)
TRACK_ID = ("t", 7)
ARTIST_ID = ("a", 5)
BLOCK_DIGITS = 4
ROW_DIGITS = 8

MS_PER_S = 1000
S_PER_MIN = 60
S_PER_HOUR = 3600
MS_PER_DAY = 24 * S_PER_HOUR * MS_PER_S


def format_ids(prefix: str, width: int, numbers: np.ndarray) -> np.ndarray:
    """Object array of strings ``prefix`` + zero-padded ``numbers``."""
    return np.array([f"{prefix}{n:0{width}d}" for n in numbers.tolist()], dtype=object)


def parse_ids(ids, prefix: str, count: int) -> np.ndarray:
    """Row index of each id (``prefix`` + digits, below ``count``); -1 for anything else."""
    text = pd.Series(np.asarray(ids, dtype=object)).astype("string")
    number = pd.to_numeric(text.str.slice(len(prefix)).where(text.str.startswith(prefix)),
                           errors="coerce")
    known = number.notna() & (number >= 0) & (number < count) & text.str.slice(len(prefix)).str.isdigit()
    return np.where(known.fillna(False).to_numpy(bool), number.fillna(-1).to_numpy(), -1).astype(np.int64)


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def text(*parts) -> np.ndarray:
    """Join constant strings and (n, w) digit matrices column-wise into an object array of str."""
    n = next(p.shape[0] for p in parts if isinstance(p, np.ndarray))
    cols = [np.broadcast_to(np.frombuffer(p.encode(), dtype=np.uint8), (n, len(p)))
            if isinstance(p, str) else p for p in parts]
    joined = np.ascontiguousarray(np.concatenate(cols, axis=1))
    return joined.view(f"S{joined.shape[1]}").ravel().astype(f"U{joined.shape[1]}").astype(object)
