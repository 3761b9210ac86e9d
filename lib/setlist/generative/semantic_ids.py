"""Semantic IDs: item embeddings -> short code tuples by residual k-means (TIGER, Rajput et al. 2023).

Level 0 clusters the L2-normalised embeddings; level l clusters what the earlier levels left
unexplained (the residual after subtracting each item's centroid). Items with similar content
therefore share code prefixes, and the decoder can generalise from an item's neighbours. TIGER
trains an RQ-VAE; scikit-learn's k-means on the residuals ("RQ-KMeans") is the simpler variant
used by later work and needs no training loop. Two items can end up with the same tuple (always,
when their embeddings are equal), so a last level numbers the items sharing a tuple 0, 1, 2, ...
and every item gets a unique code.

Embeddings come from the items' tags/attributes (:func:`content_embeddings`, TF-IDF + truncated
SVD), which is what lets an item nobody has played yet get a code: cold start. Items without
attributes fall back to a collaborative embedding (:func:`collaborative_embeddings`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import normalize

from setlist.errors import SetlistError


class GenerativeError(SetlistError):
    """Input to the generative retriever is unusable (empty catalogue, unknown item, wrong shape)."""


@dataclass(frozen=True)
class SemanticIds:
    """``codes[r]`` is the tuple of item ``items[r]``: ``levels`` k-means codes, then the
    disambiguation code. ``codebook_sizes`` has one entry per column of ``codes`` (the last is
    1 + the largest disambiguation code); ``collisions`` counts items whose k-means tuple an
    earlier item already had; ``residual_errors[l]`` is the mean squared norm of the residual
    left after levels 0..l (the reconstruction error)."""
    codes: np.ndarray  # [num_items, levels + 1] int64
    items: np.ndarray  # [num_items] item ids, row order
    collisions: int
    codebook_sizes: tuple[int, ...]
    residual_errors: tuple[float, ...]

    @property
    def levels(self) -> int:
        return self.codes.shape[1] - 1

    def rows(self, item_ids: Sequence[int]) -> np.ndarray:
        """Item ids -> rows of ``codes``; an id outside the catalogue raises."""
        order = np.argsort(self.items)
        wanted = np.asarray(item_ids, dtype=self.items.dtype)
        found = np.searchsorted(self.items, wanted, sorter=order).clip(max=len(order) - 1)
        rows = order[found]
        missing = wanted[self.items[rows] != wanted] if wanted.size else wanted
        if missing.size:
            raise GenerativeError(f"semantic ids: item(s) {missing[:5].tolist()} have no code (not in the catalogue)")
        return rows


def _disambiguate(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """[N, levels] tuples -> the 0-based index of each item among the earlier items sharing its tuple."""
    _, group = np.unique(codes, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")  # item order kept inside a group, so reruns agree
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    index_in_group = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    out = np.empty(len(order), dtype=np.int64)
    out[order] = index_in_group
    return out, int((out > 0).sum())


def residual_quantise(embeddings: np.ndarray, item_ids: Sequence[int], levels: int = 3,
                      codebook_size: int = 256, seed: int = 0) -> SemanticIds:
    """[num_items, dim] embeddings (row r is item ``item_ids[r]``) -> unique semantic IDs."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    items = np.asarray(item_ids)
    if vectors.ndim != 2 or len(vectors) == 0 or len(vectors) != len(items):
        raise GenerativeError(f"residual_quantise: expected [num_items, dim] embeddings for {len(items)} items, "
                              f"got shape {vectors.shape}")
    if levels < 1:
        raise GenerativeError(f"residual_quantise: levels must be at least 1, got {levels}")
    if len(np.unique(items)) != len(items):
        raise GenerativeError("residual_quantise: item ids must be unique")
    residual = normalize(vectors)  # cosine geometry: the scale of an embedding says nothing about the item
    codes, sizes, errors = [], [], []
    for level in range(levels):
        # Fewer clusters than distinct points would leave empty clusters (and a sklearn warning).
        distinct = len(np.unique(residual.round(12), axis=0))
        k = max(1, min(codebook_size, len(residual), distinct))
        kmeans = KMeans(n_clusters=k, n_init=1, random_state=seed + level).fit(residual)
        codes.append(kmeans.labels_.astype(np.int64))
        sizes.append(k)
        residual = residual - kmeans.cluster_centers_[kmeans.labels_]
        errors.append(float((residual ** 2).sum(1).mean()))
    tuples = np.stack(codes, axis=1)
    last, collisions = _disambiguate(tuples)
    return SemanticIds(np.column_stack([tuples, last]).astype(np.int64), items, collisions,
                       tuple(sizes) + (int(last.max()) + 1,), tuple(errors))


def content_embeddings(item_attributes: Mapping[int, Sequence], item_ids: Sequence[int], dim: int,
                       fallback: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, int]:
    """Items' tag/attribute lists -> ([num_items, dim] L2-normalised embeddings, fallback count).

    TF-IDF over the attribute ids (a rare tag says more about an item than a common one), then
    truncated SVD to ``dim``. An item with no attributes takes its row of ``fallback`` (a
    [num_items, dim] collaborative embedding) and is counted; without ``fallback`` it raises."""
    items = list(item_ids)
    documents = [" ".join(f"a{value}" for value in item_attributes.get(item, ()) or ()) for item in items]
    missing = np.array([not document for document in documents], dtype=bool)
    if missing.any() and fallback is None:
        raise GenerativeError(f"content_embeddings: {int(missing.sum())} item(s) have no attributes "
                              f"(e.g. {[items[i] for i in np.flatnonzero(missing)[:5]]}) and no fallback was given")
    if fallback is not None and np.shape(fallback) != (len(items), dim):
        raise GenerativeError(f"content_embeddings: fallback must be [{len(items)}, {dim}], got {np.shape(fallback)}")
    out = np.zeros((len(items), dim))
    if (~missing).any():
        tfidf = TfidfVectorizer(token_pattern=r"\S+", lowercase=False).fit_transform(
            [d for d, m in zip(documents, missing) if not m])
        out[~missing] = _svd(tfidf, dim, seed)
    if missing.any():
        out[missing] = np.asarray(fallback, dtype=np.float64)[missing]
    return normalize(out), int(missing.sum())


def collaborative_embeddings(sequences: Sequence[Sequence[int]], item_ids: Sequence[int], dim: int,
                             seed: int = 0) -> np.ndarray:
    """Item-by-user play matrix -> [num_items, dim] truncated-SVD item factors (L2-normalised);
    an item nobody played gets a zero row."""
    index = {item: row for row, item in enumerate(item_ids)}
    rows = [index[item] for sequence in sequences for item in sequence if item in index]
    users = [user for user, sequence in enumerate(sequences) for item in sequence if item in index]
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, users)), shape=(len(index), max(len(sequences), 1)))
    matrix.data = np.log1p(matrix.data)  # repeated plays should not dominate
    return normalize(_svd(matrix, dim, seed))


def item_embeddings(item_attributes: Mapping[int, Sequence], sequences: Sequence[Sequence[int]],
                    item_ids: Sequence[int], dim: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """Content next to collaborative: ([num_items, 2 * dim] L2-normalised, fallback count).

    Content alone puts every item with the same tags on one tuple (then only the arbitrary
    disambiguation code tells them apart); the play SVD splits them by who listens. An item
    nobody played has no collaborative half of its own: left at zero it would sit in clusters of
    its own. It takes the half a ridge regression from content predicts, fitted on the played
    items (as CB2CF / DropoutNet map content into the collaborative space), so it lands among
    played items with similar tags. Its full tuple is still one no played item has, and the
    decoder seldom writes it: the bench measures cold start with content alone too."""
    collaborative = collaborative_embeddings(sequences, item_ids, dim, seed)
    content, fallbacks = content_embeddings(item_attributes, item_ids, dim, fallback=collaborative, seed=seed)
    played = np.abs(collaborative).sum(1) > 0
    # Not "content row is non-zero": an item without attributes has its collaborative row copied
    # into its content half, and fitting on those rows would teach the regression the identity.
    has_content = np.array([bool(item_attributes.get(item)) for item in item_ids], dtype=bool)
    cold = ~played & has_content
    fitted = played & has_content
    if cold.any() and fitted.sum() > 1:
        regression = Ridge(alpha=1.0).fit(content[fitted], collaborative[fitted])
        collaborative = collaborative.copy()
        collaborative[cold] = normalize(regression.predict(content[cold]))
    return normalize(np.hstack([content, collaborative])), fallbacks


def _svd(matrix, dim: int, seed: int) -> np.ndarray:
    """Truncated SVD to ``dim`` columns; zero-padded when the matrix has fewer usable ones."""
    rank = min(dim, min(matrix.shape) - 1)
    out = np.zeros((matrix.shape[0], dim))
    if rank >= 1:
        out[:, :rank] = TruncatedSVD(n_components=rank, random_state=seed).fit_transform(matrix)
    return out
