"""A picture of a run: loss and accuracy per epoch, with the centralized baseline beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tinysplit.host.training.trainer import EpochLog


def plot_training(
    history: Sequence[EpochLog],
    path: Path,
    *,
    centralized: Sequence[float] | None,
    title: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h.epoch for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [h.loss for h in history], marker=".", color="tab:red")
    ax_loss.set(xlabel="epoch", ylabel="training loss (mean over steps)", yscale="log")
    ax_loss.grid(alpha=0.3)
    ax_acc.plot(epochs, [h.train_accuracy for h in history], marker=".", label="split, train")
    ax_acc.plot(epochs, [h.test_accuracy for h in history], marker=".", label="split, test")
    if centralized:
        ax_acc.plot(
            range(1, len(centralized) + 1),
            centralized,
            color="grey",
            ls="--",
            label="centralized float, test",
        )
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
