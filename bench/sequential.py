"""The sequential transformer (setlist.sequential) on public next-item benchmarks, next to published rows.

LastFM (S3-Rec's preprocessing; full ranking and the 99-negatives protocol), Amazon Beauty
(full ranking) and MovieLens-1M (gSASRec's split; test options (a) and (b), see
setlist.sequential.public), read in place from ../shared/data. Leave-one-out, the user's
earlier items excluded from the ranking, model picked by validation NDCG@10. Per set: train
(``fit``, the daily source's loop) with the tuned settings below (``--set key=value`` or
``--set lastfm.key=value`` overrides them) within ``--max-minutes``, then print HR@{1,5,10},
NDCG@{5,10}, MRR, CPU seconds per epoch at ``--threads`` and the epochs run, our rows beside
the published ones, and "met" / "not met" for each target. With a GPU it also times epochs
there; nothing is logged to MLflow.

    .venv/bin/python bench/sequential.py --datasets lastfm,beauty,ml1m --max-minutes 20 --threads 2

Measured 2026-12-01 (1 thread: the 2 cores were shared with Spark jobs, and 2 torch threads on a
busy core ran several times slower than 1): ML-1M option (a) NDCG@10 0.1726 (62 epochs, 40 min,
~31 s/epoch; SASRec-in-HSTU 0.1603 met, HSTU-large 0.1893 not). Measured 2026-12-06, after
training on every window of a long sequence (1 thread, 2 runs sharing the 2 cores): Beauty
0.0471 (1,024 negatives, 54 epochs, 17 min, stopped by patience; BSARec 0.0611 not met), LastFM
full 0.0281 / HR@10 0.0523, 99 negatives 0.2422 / 0.4459 (111 epochs, 9 min, stopped by patience;
BSARec 0.0435 / 0.0807 and S3-Rec 0.3583 / 0.5835 not met; with the latest window only, the same
6 min gave 0.0197, and popularity alone gives 0.0180 / 0.1622 on this split). Measured
2026-12-06 with item attributes (S3-Rec's item2attributes added to each item's vector, at 6b95239,
1 thread beside another bench): LastFM full 0.0300 / HR@10 0.0606, 99 negatives 0.2944 / 0.5119
(98 epochs, 7 min, patience); Beauty 0.0473 / HR@10 0.0808 (46 epochs, 15 min, patience;
validation 0.0605 against 0.0571 without): targets still not met. Measured 2026-12-07 with the
tuned settings below (BSARec's causal frequency branch, relative bias, no absolute positions; at
2916704, 1 thread, two runs sharing the 2 cores): LastFM full NDCG@10 0.0496 / HR@10 0.0817 (seed
11, 116 epochs, 8.5 min, patience) and 0.0441 / 0.0752 (seed 12, 12-min budget): NDCG@10 > 0.0435
met in both, HR@10 > 0.0807 in one of two; 99 negatives 0.3193 / 0.5413 and 0.3258 / 0.5505 (S3-Rec
not met). Ablation (seed 11, 10 min): relative bias alone 0.0340, plus no absolute positions
0.0420, plus the frequency branch 0.0496. Beauty 0.0486 / HR@10 0.0833 (41 epochs, 14.5 min,
patience; validation 0.0613): BSARec's 0.0611 not met. Measured 2026-12-07, ML-1M with the
recency half of that recipe (relative bias, no absolute positions; no frequency branch; at
5ddaf06, 1 thread beside a Spark bench, --max-minutes 45): option (a) NDCG@10 0.1849, HR@10
0.3143 (29 epochs at 80 s, stopped by the budget, best 27, validation 0.1907): 0.1603 met, HSTU-
large's 0.1893 not met; option (b) 0.1262. Measured 2026-12-07, Beauty in S3-Rec's and BSARec's
regime (prefix_examples: each prefix of items[:-2] one example, loss at its last position;
absolute positions, the whole-window frequency filter, batch 256): with 1,024 sampled negatives
0.0557 (39 epochs, 35 min, patience; at 75cb48d); with the full-catalogue softmax, the tuned
setting since a087e53 (--datasets beauty --threads 2 --max-minutes 57, alone on the 2 cores):
NDCG@10 0.0589, HR@10 0.0984, HR@1 0.0288, HR@5 0.0708, NDCG@5 0.0501, MRR 0.0534 (54 epochs at
41 s, stopped by patience, best 39, validation 0.0711): BSARec's 0.0611 not met. The same regime on
LastFM gave 0.0433 against 0.0496, so LastFM keeps its recipe.
Without item attributes (--set item_attributes=false, --max-minutes 26, 2 threads, at 3ceb3fb):
0.0567 (44 epochs at 33 s, stopped by the budget, best 41, validation 0.0691), below 0.0589.
Measured 2026-12-07 with BSARec's block (post_norm: LayerNorm after each residual sum, normalised
inputs, N(0, 0.02) init; feed_forward_multiplier=4) and its learning rate 5e-4, the tuned setting
since 1b38ec1 (--datasets beauty --threads 2 --max-minutes 55 with those three as --set, at
4bd56a7, alone on the 2 cores): NDCG@10 0.0593, HR@10 0.1003, HR@1 0.0280, HR@5 0.0715, NDCG@5
0.0500, MRR 0.0534 (45 epochs at 43 s, stopped by patience, best 30, validation 0.0746): BSARec's
0.0611 not met. BSARec's own published training log (its repository's
src/output/BSARec_Beauty_best.log) has best validation 0.0742 and test 0.0611: our validation
matches, the split's validation-to-test drop is theirs too, and ours is a little larger. Our
validation swings +-0.003 from epoch to epoch where theirs moves +-0.001, so the best epoch is
partly picked by noise; batches here are cut from length-sorted pools, and random batches as
theirs (--set length_pool_batches=1) took 134 s an epoch instead of 43 on the 2 cores, too slow
to run to convergence here. Measured 2026-12-07 with the weights' moving average (weight_average_decay
0.999, validated and kept in place of the raw weights; the tuned setting since 1d54fd4; --datasets
beauty --threads 1 --max-minutes 70 --set weight_average_decay=0.999 at 45ab81a, beside the
generative bench on the other core): NDCG@10 0.0630, HR@10 0.1058, HR@1 0.0303, HR@5 0.0753,
NDCG@5 0.0532, MRR 0.0566 (42 epochs at 53 s, stopped by patience, best 27, validation 0.0777):
BSARec's 0.0611 met. The average's validation climbs smoothly (0.0716 at epoch 12, 0.0775 at 22)
and stays within 0.001 of its best for 15 epochs, where the raw weights swung +-0.003. Seed 12
(--max-minutes 36 --set seed=12 at 597f8bf, the same setting, 1 thread beside another bench):
NDCG@10 0.0632, HR@10 0.1059 (29 epochs at 65 s, stopped by the budget, best 24, validation
0.0768): met in 2 of 2 seeds.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from setlist.config import load_config
from setlist.sequential import public
from setlist.sequential.training import evaluate, fit, load_model

# Per-set settings over the daily defaults (candidates.sequential): full-catalogue softmax
# (SASRec + cross-entropy; on Beauty 1,024 sampled negatives: the same test NDCG@10, 0.0471, at a
# third of the epoch time), heavier dropout on the small sets, max_len 50 / 200. On LastFM,
# BSARec's recipe made causal: relative position and time bias instead of absolute
# positions (every trained position is then the last of its prefix, as served; LastFM test
# NDCG@10 0.0340 -> 0.0420) and the frequency branch (BSARec's alpha, c and one head per set;
# 0.0420 -> 0.0496). ML-1M takes the recency half only (option (a) 0.1726 -> 0.1849 in 45 min).
RECENCY = dict(relative_bias=True, absolute_positions=False)
TUNED = {
    "lastfm": dict(loss="softmax", negatives=0, max_len=50, dropout=0.5, attention_dropout=0.5, epochs=300,
                   patience=40, batch_size=64, learning_rate=1e-3, frequency_mix=0.9, frequency_cutoff=3, heads=1,
                   **RECENCY),
    # Beauty: S3-Rec's and BSARec's regime, each prefix of items[:-2] one example with the loss at its
    # last position over the full catalogue, absolute positions and the whole-window frequency filter;
    # BSARec's block (post-norm, 4 x dim feed-forward) and learning rate; validated and kept as a moving
    # average of the weights (decay 0.999 over ~520 steps an epoch: about two epochs; validation
    # NDCG@10 0.0746 -> 0.0777 and test 0.0593 -> 0.0630).
    "beauty": dict(loss="softmax", negatives=0, max_len=50, dropout=0.5, attention_dropout=0.5, epochs=200,
                   patience=15, batch_size=256, learning_rate=5e-4, frequency_mix=0.7, frequency_cutoff=5, heads=1,
                   prefix_examples=True, absolute_positions=True, relative_bias=False, post_norm=True,
                   feed_forward_multiplier=4, weight_average_decay=0.999),
    "ml1m": dict(loss="softmax", negatives=0, max_len=200, dropout=0.2, epochs=300, patience=25,
                 batch_size=64, learning_rate=2e-3, **RECENCY),
}
# (dataset, protocol) -> [(source, {metric: value}, is a target)]; published figures.
PUBLISHED = {
    ("lastfm", "full"): [("BSARec (AAAI 2024)", {"hr@10": 0.0807, "ndcg@10": 0.0435}, True)],
    ("lastfm", "sampled"): [("S3-Rec (CIKM 2020)", {"hr@10": 0.5835, "ndcg@10": 0.3583}, True)],
    ("beauty", "full"): [("BSARec (AAAI 2024)", {"ndcg@10": 0.0611}, True)],
    ("ml1m", "option_a"): [("SASRec, in the HSTU paper (ICML 2024)", {"ndcg@10": 0.1603}, True),
                           ("HSTU-large (aim)", {"ndcg@10": 0.1893}, True)],
    ("ml1m", "option_b"): [("SASRec, in the HSTU paper (ICML 2024)", {"ndcg@10": 0.1603}, False)],
}
COLUMNS = ["hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "mrr"]


def _value(text: str):
    """A --set value: YAML (true, 0.5, gbce), with 2e-3 read as a number (YAML 1.1 needs 2.0e-3)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def settings_for(name: str, args) -> dict:
    settings = load_config().candidates.sequential.model_dump()
    settings.update(TUNED[name], threads=args.threads, device="cpu")
    if args.epochs:
        settings["epochs"] = args.epochs
    for override in args.overrides:
        key, value = override.split("=", 1)
        scope, _, key = key.rpartition(".")
        if scope in ("", name):
            if key not in settings:
                raise SystemExit(f"--set {override}: no sequential setting {key!r}")
            settings[key] = _value(value)
    return settings


def gpu_epoch_seconds(data: public.PublicSet, settings: dict) -> str:
    if not torch.cuda.is_available():
        return "no GPU available (torch.cuda.is_available() is False): GPU epoch time not measured"
    gpu = dict(settings, device="cuda", epochs=2, patience=0)
    out = fit(data.shard_files, gpu, data.num_items, 1, None,
              item_attributes=data.item_attributes if settings["item_attributes"] else None)
    seconds = out["epochs"][-1]["seconds"]
    return f"GPU ({torch.cuda.get_device_name(0)}): {seconds:.2f} s/epoch (2nd of 2 epochs, no validation)"


def run(name: str, args, work: Path) -> dict:
    settings = settings_for(name, args)
    loaded = time.perf_counter()
    data = public.load(name, work / name, settings["max_len"], shards=settings["shards"])
    print(f"\n== {name}: {data.train_users:,} training users, {data.train_items:,} training items, "
          f"{data.num_items - 2:,} catalogue items (loaded in {time.perf_counter() - loaded:.1f} s)")
    print("settings: " + json.dumps({k: settings[k] for k in (
        "loss", "negatives", "gbce_t", "max_len", "dim", "heads", "layers", "feed_forward_multiplier", "post_norm", "dropout",
        "attention_dropout",
        "relative_bias", "absolute_positions", "item_attributes", "frequency_mix", "frequency_cutoff",
        "prefix_examples",
        "batch_size", "length_pool_batches", "shuffle_buffer", "learning_rate", "weight_decay", "weight_average_decay",
        "epochs", "patience",
        "threads", "seed")}))
    for protocol, note in data.notes.items():
        print(f"test {protocol}: {note}")
    print(f"validation: {len(data.validation['targets']):,} users, items[:-2] -> items[-2], full ranking")
    torch.set_num_threads(args.threads)

    def progress(row):
        if row["epoch"] % args.print_every == 0:
            print(f"  epoch {row['epoch']:3d} loss {row['loss']:.4f} {row['seconds']:.1f} s "
                  f"val NDCG@10 {row.get('val_ndcg@10', float('nan')):.4f} HR@10 {row.get('val_hr@10', float('nan')):.4f}",
                  flush=True)

    budget = args.max_minutes * 60 if args.max_minutes else None
    started = time.perf_counter()
    attributes = data.item_attributes if settings["item_attributes"] else None
    out = fit(data.shard_files, settings, data.num_items, 1, data.validation, exclude_seen=True,
              item_attributes=attributes, time_budget_s=budget, on_epoch=progress)
    wall = time.perf_counter() - started
    model = load_model(out["architecture"], out["state"])
    epochs = out["epochs"]
    stopped = ("patience" if settings["patience"] and len(epochs) < settings["epochs"]
               and len(epochs) - out["best_epoch"] >= settings["patience"] else
               "time budget" if len(epochs) < settings["epochs"] else "epochs")
    result = {"name": name, "epochs": len(epochs), "best_epoch": out["best_epoch"], "stopped": stopped,
              "epoch_s": sum(r["seconds"] for r in epochs) / len(epochs), "wall_s": wall,
              "val_ndcg@10": max(r["val_ndcg@10"] for r in epochs), "notes": data.notes,
              "tests": {p: evaluate(model, t, exclude_seen=True) for p, t in data.tests.items()}}
    result["gpu"] = gpu_epoch_seconds(data, settings) if not args.skip_gpu else "GPU timing skipped"
    return result


def print_table(results: list[dict], threads: int) -> None:
    header = f"{'set / protocol':18} {'model':38} " + " ".join(f"{c:>7}" for c in COLUMNS) + \
        f" {'s/epoch':>8} {'epochs':>10}"
    print("\n" + header + "\n" + "-" * len(header))
    verdicts = []
    for result in results:
        for protocol, metrics in result["tests"].items():
            label = f"{result['name']} {protocol}"
            figures = " ".join(f"{metrics[c]:7.4f}" for c in COLUMNS)
            print(f"{label:18} {'ours (setlist.sequential)':38} {figures} {result['epoch_s']:8.2f} "
                  f"{str(result['epochs']) + ' (' + str(result['best_epoch']) + ')':>10}")
            for source, figures_, target in PUBLISHED.get((result["name"], protocol), []):
                cells = " ".join(f"{figures_[c]:7.4f}" if c in figures_ else f"{'-':>7}" for c in COLUMNS)
                print(f"{'':18} {source:38} {cells}")
                if target:
                    for metric, value in figures_.items():
                        met = metrics[metric] > value  # the issue asks for "above"
                        verdicts.append(f"{label} {metric} {metrics[metric]:.4f} vs {value:.4f} {source}: "
                                        f"{'met' if met else 'not met'}")
    print(f"(s/epoch: training only, {threads} CPU thread(s); epochs: run (best by validation NDCG@10))")
    print("\nTargets:")
    for line in verdicts:
        print("  " + line)
    print()
    for result in results:
        print(f"{result['name']}: {result['epochs']} epochs in {result['wall_s'] / 60:.1f} min (stopped by "
              f"{result['stopped']}), best epoch {result['best_epoch']}, validation NDCG@10 "
              f"{result['val_ndcg@10']:.4f}; {result['gpu']}")
        for protocol, note in result["notes"].items():
            print(f"  {protocol}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="lastfm,beauty,ml1m", help="comma-separated: lastfm, beauty, ml1m")
    parser.add_argument("--epochs", type=int, default=0, help="epochs per set (default: the tuned ones)")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="training time budget per set: no epoch starts after it (0: none)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="setting=value for every set, or set.setting=value (e.g. ml1m.dropout=0.3)")
    parser.add_argument("--workdir", default=None, help="scratch folder for the shards (default: a temp dir)")
    parser.add_argument("--print-every", type=int, default=10, help="progress line every N epochs")
    parser.add_argument("--skip-gpu", action="store_true", help="do not time epochs on a GPU")
    args = parser.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = set(names) - set(public.LOADERS)
    if unknown:
        raise SystemExit(f"--datasets: unknown {sorted(unknown)}; choose from {sorted(public.LOADERS)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="setlist-bench-seq-"))
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), cuda available: {torch.cuda.is_available()}")
    results = [run(name, args, work) for name in names]
    print_table(results, args.threads)


if __name__ == "__main__":
    main()
