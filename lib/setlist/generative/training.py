"""Training and beam-search evaluation of the generative retriever; no Spark, no MLflow.

:func:`fit` cuts each training sequence into windows of ``max_items + 1`` items (half-window
stride, each transition counted once, so a long sequence trains every next item with at least
``max_items / 2`` items of context where it has them), trains with AdamW, and after every epoch
ranks a fixed validation subset by beam search; the state of the best epoch (validation
NDCG@10) is returned. A target the beam did not return has rank infinity (no hit, no NDCG).
"""
from __future__ import annotations

import copy
import io
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from setlist.generative.model import GenerativeRetriever, beam_search, window_loss
from setlist.generative.semantic_ids import SemanticIds
from setlist.generative.trie import CodeTrie, build_trie
from setlist.config import GenerativeConfig
from setlist.sequential.metrics import rank_metrics
from setlist.sequential.training import pick_device, weight_average

RANK_KS = (5, 10, 20)


def windows(sequences: Sequence[Sequence[int]], max_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Item-row sequences -> ([N, max_items + 1] windows right-padded with -1, [N, W] bool: the
    slots whose item is a training target). Windows start every ``max_items // 2`` items and the
    last one ends at the sequence's end; a slot counts if no earlier window counted that item."""
    width, stride = max_items + 1, max(1, max_items // 2)
    rows, counted = [], []
    for sequence in sequences:
        sequence = list(sequence)
        if len(sequence) < 2:
            continue
        starts = list(range(0, max(len(sequence) - width, 0), stride)) + [max(len(sequence) - width, 0)]
        covered = 1  # items before this index are already targets (item 0 never is one)
        for begin in starts:
            window = sequence[begin:begin + width]
            row = np.full(width, -1, dtype=np.int64)
            row[:len(window)] = window
            mask = np.zeros(width, dtype=bool)
            mask[:len(window)] = np.arange(begin, begin + len(window)) >= max(covered, begin + 1)
            rows.append(row)
            counted.append(mask)
            covered = begin + len(window)
    return np.stack(rows), np.stack(counted)


def length_batches(items: np.ndarray, counted: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Shuffled batches of windows of similar length, each cut to its longest window."""
    lengths = (items >= 0).sum(1)
    order = rng.permutation(len(items))
    pool = batch_size * 16  # sort within pools: similar lengths, still a random mix across pools
    batches = []
    for begin in range(0, len(order), pool):
        part = order[begin:begin + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    for index in rng.permutation(len(batches)):
        chosen = batches[index]
        width = int(lengths[chosen].max())
        yield torch.from_numpy(items[chosen, :width]), torch.from_numpy(counted[chosen, :width])


def target_ranks(model: GenerativeRetriever, trie: CodeTrie, histories: Sequence[Sequence[int]],
                 targets: Sequence[int], beam_size: int, top_k: int | None = None,
                 device: torch.device | str = "cpu", exclude_seen: bool = False) -> np.ndarray:
    """Item-row histories and targets -> 1-based rank of each target in the beam's list, inf
    where the beam did not return it. ``exclude_seen``: the user's earlier items are not
    offered (the target itself always may be), as setlist.sequential's full-ranking protocol."""
    exclude = ([set(history) - {target} for history, target in zip(histories, targets)]
               if exclude_seen else None)
    found, _ = beam_search(model, histories, trie, beam_size, top_k or beam_size, device=device, exclude=exclude)
    hits = found == np.asarray(targets)[:, None]
    return np.where(hits.any(1), hits.argmax(1) + 1, np.inf).astype(np.float64)


def evaluate(model, trie, histories, targets, beam_size: int, device="cpu", exclude_seen: bool = False) -> dict[str, float]:
    ranks = target_ranks(model, trie, histories, targets, beam_size, device=device, exclude_seen=exclude_seen)
    return rank_metrics(ranks, hr_ks=tuple(k for k in RANK_KS if k <= beam_size))


def state_bytes(model: GenerativeRetriever) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def load_model(architecture: dict[str, Any], state: bytes, device: str | torch.device = "cpu") -> GenerativeRetriever:
    model = GenerativeRetriever(**architecture)
    model.load_state_dict(torch.load(io.BytesIO(state), map_location=device))
    return model.to(device).eval()


def build_model(settings: dict[str, Any], codes: SemanticIds) -> GenerativeRetriever:
    return GenerativeRetriever(codes.codebook_sizes, len(codes.items), max_items=settings["max_items"],
                               dim=settings["dim"], heads=settings["heads"],
                               encoder_layers=settings["encoder_layers"], decoder_layers=settings["decoder_layers"],
                               ff_dim=settings["ff_dim"], dropout=settings["dropout"], codes=codes.codes,
                               relative_slots=settings["relative_slots"])


def fit(train_sequences: Sequence[Sequence[int]], codes: SemanticIds, settings: dict[str, Any],
        validation: dict | None = None, time_budget_s: float | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train on item-id sequences (oldest first); returns {"state", "architecture", "epochs",
    "best_epoch"}. ``settings``: keys of :class:`~setlist.config.GenerativeConfig` (missing ones
    take its defaults; the whole is validated by it).
    ``validation``: {"histories": item-id lists, "targets": item ids, optionally "exclude_seen":
    True to rank each user's earlier items out, as :func:`target_ranks`}; ``validation_users`` of
    them (seeded sample) are ranked by beam search after each epoch, and the state of the epoch
    with the best NDCG@10 is kept (the last epoch's without validation), of the weights' moving
    average where ``weight_average_decay`` is set. No epoch starts once
    ``time_budget_s`` has passed; ``patience`` epochs without improvement stop training."""
    settings = GenerativeConfig(**settings).model_dump()
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    torch.manual_seed(settings["seed"])
    rng = np.random.default_rng(settings["seed"])
    device = pick_device(settings["device"])
    model = build_model(settings, codes).to(device)
    trie = build_trie(codes.codes, codes.codebook_sizes)
    items, counted = windows([codes.rows(s) for s in train_sequences], settings["max_items"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"],
                                  weight_decay=settings["weight_decay"])
    averaged = weight_average(model, settings["weight_average_decay"])
    served = averaged.module if averaged is not None else model
    if validation is not None:
        chosen = np.sort(rng.permutation(len(validation["targets"]))[:settings["validation_users"]])
        val_histories = [codes.rows(validation["histories"][i]) for i in chosen]
        val_targets = codes.rows(np.asarray(validation["targets"])[chosen])
        exclude_seen = bool(validation.get("exclude_seen", False))
    epochs, best, best_state, stale = [], -1.0, None, 0
    started_fit = time.perf_counter()
    for epoch in range(1, settings["epochs"] + 1):
        model.train()
        started, total, level_totals, steps = time.perf_counter(), 0.0, np.zeros(model.depth), 0
        for batch, mask in length_batches(items, counted, settings["batch_size"], rng):
            loss, per_level = window_loss(model, batch.to(device), mask.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total, level_totals, steps = total + float(loss.detach()), level_totals + per_level, steps + 1
        row = {"epoch": epoch, "loss": total / steps, "seconds": time.perf_counter() - started,
               **{f"loss_level{level}": value / steps for level, value in enumerate(level_totals)}}
        if validation is not None:
            row.update({f"val_{k}": v for k, v in evaluate(served, trie, val_histories, val_targets,
                                                            settings["beam_size"], device, exclude_seen).items()})
            if row["val_ndcg@10"] > best:
                best, best_state, stale = row["val_ndcg@10"], copy.deepcopy(served.state_dict()), 0
            else:
                stale += 1
        epochs.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if settings["patience"] and stale >= settings["patience"]:
            break
        if time_budget_s is not None and time.perf_counter() - started_fit >= time_budget_s:
            break
    if best_state is not None:
        served.load_state_dict(best_state)
    best_epoch = max(epochs, key=lambda r: r.get("val_ndcg@10", r["epoch"]))["epoch"]
    return {"state": state_bytes(served), "architecture": model.architecture, "epochs": epochs,
            "best_epoch": best_epoch}
