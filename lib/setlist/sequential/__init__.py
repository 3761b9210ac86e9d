"""The sequential candidate source: a causal transformer over each user's play sequence.

- :mod:`.sequences` (Spark): listens -> per-user, time-ordered item sequences with context.
- :mod:`.model` (PyTorch): the SASRec-class transformer, gBCE / sampled-softmax losses.
- :mod:`.data`: the streaming ``IterableDataset`` over sequence shards, and batching.
- :mod:`.training`: the training loop TorchDistributor launches; leave-one-out evaluation.
- :mod:`.metrics`: HR@k, NDCG@k and MRR from target ranks (declared once).
- :mod:`.inference` (Spark): batch top-N and per-pair scores with the model loaded once per worker.

Nothing here imports torch at package import: Spark-only code paths stay light.
"""
