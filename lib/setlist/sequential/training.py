"""Training and leave-one-out evaluation of the sequential model; no Spark, no MLflow.

:func:`fit` is what ``TorchDistributor`` runs (in-process ranks of ``torchrun`` in local mode,
barrier tasks on a cluster): it trains on the shards, evaluates on the validation set after
every epoch (rank 0) and returns the state of the best epoch with every epoch's figures. Under
``torch.distributed`` the model is wrapped in DDP and ``Join`` absorbs ranks that run out of
batches first; the same function runs on CPU and on a GPU (``device``: auto / cpu / cuda).
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
import time
from typing import Any, Callable

import numpy as np
import torch
from torch.distributed.algorithms.join import Join

from setlist.sequential.data import SequenceShards, model_input
from setlist.sequential.metrics import rank_metrics
from setlist.sequential.model import FIRST_ITEM, PAD, SequentialRecommender, sequence_loss

INPUT_KEYS = ("items", "surfaces", "outcomes", "times")


def build_model(settings: dict[str, Any], num_items: int, num_surfaces: int,
                item_attributes: tuple[np.ndarray, np.ndarray] | None = None) -> SequentialRecommender:
    """``item_attributes``: (item indices, attribute indices) pairs, or None for item ids alone."""
    pairs = item_attributes if item_attributes is not None and len(item_attributes[0]) else None
    model = SequentialRecommender(num_items=num_items, max_len=settings["max_len"], dim=settings["dim"],
                                  heads=settings["heads"], layers=settings["layers"], dropout=settings["dropout"],
                                  relative_bias=settings["relative_bias"], time_buckets=settings["time_buckets"],
                                  num_surfaces=num_surfaces, attention_dropout=settings["attention_dropout"],
                                  num_attributes=int(np.max(pairs[1])) + 1 if pairs else 0,
                                  attribute_pairs=len(pairs[0]) if pairs else 0,
                                  frequency_mix=settings["frequency_mix"], frequency_cutoff=settings["frequency_cutoff"],
                                  absolute_positions=settings["absolute_positions"],
                                  feed_forward_multiplier=settings["feed_forward_multiplier"],
                                  post_norm=settings["post_norm"],
                                  # Safe only when nothing after a target is input (prefix examples).
                                  bidirectional_filter=settings["prefix_examples"])
    return model.set_attributes(*pairs) if pairs else model


def weight_average(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``model``'s parameters (None for ``decay`` 0), updated
    after every optimizer step and evaluated in its place: on the small public sets validation
    NDCG@10 swings from epoch to epoch, and the average is what the best epoch then keeps."""
    if not decay:
        return None
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay))


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def state_bytes(model: SequentialRecommender) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def load_model(architecture: dict[str, Any], state: bytes, device: str | torch.device = "cpu") -> SequentialRecommender:
    model = SequentialRecommender(**architecture)
    model.load_state_dict(torch.load(io.BytesIO(state), map_location=device))
    return model.to(device).eval()


def validation_set(records, max_len: int, candidates=None) -> dict[str, np.ndarray]:
    """Held-out rows -> stacked inputs. ``records``: (items, surfaces, outcomes, gaps, target)
    tuples, the history before the target; ``candidates`` (optional, [users, C]): the sampled
    protocol's items to rank, the target first."""
    rows = [model_input(items, surfaces, outcomes, gaps, max_len) for items, surfaces, outcomes, gaps, _ in records]
    stacked = {key: np.stack([row[key] for row in rows]) for key in INPUT_KEYS}
    stacked["targets"] = np.asarray([record[4] for record in records], dtype=np.int64)
    stacked["history"] = [np.asarray(record[0], dtype=np.int64) for record in records]
    if candidates is not None:
        stacked["candidates"] = np.asarray(candidates, dtype=np.int64)
    return stacked


@torch.no_grad()
def target_ranks(model: SequentialRecommender, evaluation: dict, exclude_seen: bool, batch_size: int = 256,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """1-based rank of each held-out target: among all real items (the user's earlier items
    left out with ``exclude_seen``, never the target itself), or among ``candidates``. A target
    the vocabulary does not know ranks last."""
    model.eval()
    ranks = []
    users = len(evaluation["targets"])
    for start in range(0, users, batch_size):
        part = slice(start, start + batch_size)
        batch = {key: torch.as_tensor(evaluation[key][part], device=device) for key in INPUT_KEYS}
        scores = model.catalogue_scores(model.last_state(batch))
        targets = torch.as_tensor(evaluation["targets"][part], device=device)
        if "candidates" in evaluation:
            scores = scores.gather(1, torch.as_tensor(evaluation["candidates"][part], device=device))
            targets = torch.zeros_like(targets)
        elif exclude_seen:
            histories = evaluation["history"][part]
            rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
            seen = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories] + [np.zeros(0, np.int64)])
            keep = (seen != evaluation["targets"][part][rows]) & (seen >= FIRST_ITEM)
            scores[torch.as_tensor(rows[keep], device=device), torch.as_tensor(seen[keep], device=device)] = float("-inf")
        known = targets >= FIRST_ITEM if "candidates" not in evaluation else torch.ones_like(targets, dtype=torch.bool)
        target_scores = scores.gather(1, targets[:, None].clamp(min=0))
        rank = 1 + (scores > target_scores).sum(1)
        ranks.append(torch.where(known, rank, scores.size(1)).cpu().numpy())
    return np.concatenate(ranks)


def evaluate(model, evaluation: dict, exclude_seen: bool, device="cpu") -> dict[str, float]:
    return rank_metrics(target_ranks(model, evaluation, exclude_seen, device=device))


def length_batches(examples, batch_size: int, seed: int, pool_batches: int = 16):
    """Examples -> collated batches of similar length: pools of ``pool_batches`` batches are
    sorted by sequence length, cut into batches, and the batches of a pool shuffled; each batch
    is cut to its longest sequence (left padding, so the leading all-padding columns go; the
    position embeddings count from the right and do not change). On ML-1M this halves the work.
    ``pool_batches=1``: batches in stream order, each a random mix of lengths."""
    rng = np.random.default_rng(seed)

    def emit(pool):
        pool.sort(key=lambda example: int((example["items"] != PAD).sum()))
        chunks = [pool[i:i + batch_size] for i in range(0, len(pool), batch_size)]
        for index in rng.permutation(len(chunks)):
            chunk = chunks[index]
            batch = {key: np.stack([example[key] for example in chunk]) for key in chunk[0]}
            width = max(int((batch["items"] != PAD).sum(1).max()), 1)
            yield {key: torch.from_numpy(np.ascontiguousarray(value[:, -width:])) for key, value in batch.items()}

    pool: list = []
    for example in examples:
        pool.append(example)
        if len(pool) == batch_size * pool_batches:
            yield from emit(pool)
            pool = []
    if pool:
        yield from emit(pool)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def fit(shard_files: list[str], settings: dict[str, Any], num_items: int, num_surfaces: int,
        validation: dict | None = None, exclude_seen: bool = False, item_attributes=None, *,
        time_budget_s: float | None = None, on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train on the shards; returns {"state", "architecture", "epochs", "best_epoch"} (rank 0).

    ``settings`` are ``SequentialConfig`` fields. The returned state is that of the epoch with
    the best validation NDCG@10 (the last epoch without a validation set), of the weights'
    moving average where ``weight_average_decay`` is set. ``time_budget_s``:
    no epoch starts once this much time has passed (single process only); ``on_epoch`` gets
    each epoch's figures as they come; ``item_attributes``: see :func:`build_model`."""
    rank, world = _distributed()
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    torch.manual_seed(settings["seed"] + rank)
    device = pick_device(settings["device"])
    model = build_model(settings, num_items, num_surfaces, item_attributes).to(device)
    trained = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"],
                                  weight_decay=settings["weight_decay"])
    dataset = SequenceShards(shard_files, settings["max_len"], seed=settings["seed"],
                             shuffle_buffer=settings["shuffle_buffer"], prefixes=settings["prefix_examples"])
    sampler = torch.Generator(device=device).manual_seed(settings["seed"] * 31 + rank)
    averaged = weight_average(model, settings["weight_average_decay"])
    served = averaged.module if averaged is not None else model
    epochs, best, best_state, stale = [], -1.0, None, 0
    fit_started = time.perf_counter()
    for epoch in range(1, settings["epochs"] + 1):
        dataset.set_epoch(epoch)
        trained.train()
        started, total, steps, positions = time.perf_counter(), 0.0, 0, 0
        joined = Join([trained]) if world > 1 else contextlib.nullcontext()
        with joined:
            for batch in length_batches(dataset, settings["batch_size"], settings["seed"] * 7 + epoch,
                                        settings["length_pool_batches"]):
                batch = {key: value.to(device) for key, value in batch.items()}
                targets = batch.pop("targets")
                # One item table per step, for the inputs and the loss: autograd sums both
                # uses into a single gradient, which DDP then reduces once.
                table = model.item_table()
                outputs = trained(**batch, table=table)
                where = targets != PAD
                loss = sequence_loss(model, outputs[where], targets[where], settings["loss"],
                                     settings["negatives"], settings["gbce_t"], sampler, table=table)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                total, steps, positions = total + float(loss.detach()), steps + 1, positions + int(where.sum())
        row = {"epoch": epoch, "loss": total / max(steps, 1), "seconds": time.perf_counter() - started,
               "batches": steps, "positions": positions}
        if validation is not None and rank == 0:
            row.update({f"val_{k}": v for k, v in evaluate(served, validation, exclude_seen, device).items()})
            if row["val_ndcg@10"] > best:
                best, best_state, stale = row["val_ndcg@10"], copy.deepcopy(served.state_dict()), 0
            else:
                stale += 1
        epochs.append(row)
        if on_epoch is not None and rank == 0:
            on_epoch(row)
        if world == 1 and settings["patience"] and stale >= settings["patience"]:
            break
        if world == 1 and time_budget_s is not None and time.perf_counter() - fit_started >= time_budget_s:
            break
    if best_state is not None:
        served.load_state_dict(best_state)
    best_epoch = max(epochs, key=lambda r: r.get("val_ndcg@10", r["epoch"]))["epoch"]
    return {"state": state_bytes(served), "architecture": model.architecture, "epochs": epochs,
            "best_epoch": best_epoch, "processes": world}

