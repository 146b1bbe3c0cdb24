"""Which epoch checkpoints a run keeps: the most recent few (to resume) and the best by validation
recall, as trainers do (Hugging Face's save_total_limit with the best model kept); the rest are
deleted as soon as a newer epoch is saved, so a long run's folder does not grow with its epochs."""

from __future__ import annotations

from pathlib import Path

# Best: recall@1, ties broken by recall@5 then recall@10; a record without them (no val rows) never wins.
RECALL_KEYS = ("recall@1", "recall@5", "recall@10")


def epoch_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch_{epoch}.pt"


def saved_epochs(folder: Path) -> list[int]:
    epochs = []
    for path in folder.glob("epoch_*.pt"):
        number = path.stem.split("_", 1)[1]
        if number.isdigit():
            epochs.append(int(number))
    return sorted(epochs)


def latest(folder: Path) -> Path | None:
    epochs = saved_epochs(folder)
    return epoch_path(folder, epochs[-1]) if epochs else None


def best_record(history: list[dict]) -> dict | None:
    """The history record with the highest validation recall; among equals the latest, which has
    trained longest (so a run whose recall never moves has no best apart from its last)."""
    scored = [(tuple(h[k] for k in RECALL_KEYS), i) for i, h in enumerate(history) if all(k in h for k in RECALL_KEYS)]
    return history[max(scored)[1]] if scored else None


def prune(folder: Path, history: list[dict], keep: int) -> list[int]:
    """Delete every epoch checkpoint but the `keep` most recent and the best; return those deleted."""
    epochs = saved_epochs(folder)
    best = best_record(history)
    kept = set(epochs[-keep:] if keep > 0 else []) | ({best["epoch"]} if best else set())
    gone = [e for e in epochs if e not in kept]
    for epoch in gone:
        epoch_path(folder, epoch).unlink(missing_ok=True)
    return gone
