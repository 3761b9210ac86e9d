"""Generative retrieval with semantic IDs (TIGER, Rajput et al., NeurIPS 2023).

- :mod:`.semantic_ids`: item embeddings (content: TF-IDF + SVD of tags) -> unique code tuples by
  residual k-means, plus a disambiguation level.
- :mod:`.trie`: the valid tuples as per-level dense tables: allowed next codes, tuple -> item.
- :mod:`.model` (PyTorch): the encoder-decoder that writes the next item's tuple; trie-
  constrained beam search.
- :mod:`.training`: windows, the AdamW loop with per-epoch beam-search validation.

Nothing here imports torch at package import.
"""
