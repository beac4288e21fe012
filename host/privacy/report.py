"""The audit as a table, as JSON rows and as a picture of originals next to reconstructions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysplit.host.privacy.audit import Audit, CutAudit


def format_table(a: Audit, noise_rows: list[dict[str, Any]] | None = None) -> str:
    lines = [
        f"== tinysplit audit: {a.model} (trained {a.trained_epochs} epochs float; attacker aux "
        f"{a.n_aux} samples, leaked {a.leaked} pairs; scored on {a.n_held_out} held-out) ==",
        "dcor: distance correlation raw <-> int8 smashed (1 = a function of the input); "
        "dcor_u: bias-corrected (the plain one drifts towards 1 in many dimensions).",
        "known: the server knows the client weights (default mode); leaked: it holds only the "
        "leaked pairs (--private).",
        "MSE/PSNR on inputs scaled to [0, 1]; acc: the model's accuracy on the reconstructions.",
        "",
        f"{'cut':>4} {'after':<14} {'bytes':>6} {'noise':>6} {'dcor':>6} {'dcor_u':>6} | "
        f"{'known: MSE':>10} {'PSNR':>6} {'SSIM':>6} {'acc':>6} | "
        f"{'leaked: MSE':>11} {'PSNR':>6} {'SSIM':>6} {'acc':>6}",
    ]
    for c in a.cuts:
        k, lk = c.known, c.leaked
        lines.append(
            f"{c.cut:>4} {c.layer[:14]:<14} {c.cut_size:>6} {c.noise_scale:>6g} {c.dcor:>6.3f} "
            f"{c.dcor_unbiased:>6.3f} | "
            f"{k.mse:>10.4f} {k.psnr:>6.1f} {k.ssim:>6.3f} {k.accuracy:>6.3f} | "
            f"{lk.mse:>11.4f} {lk.psnr:>6.1f} {lk.ssim:>6.3f} {lk.accuracy:>6.3f}"
        )
    if a.cuts:
        acc = a.cuts[0].model_accuracy
        lines.append(f"(the model on the raw held-out set: accuracy {acc:.3f})")
    if noise_rows:
        lines += [
            "",
            "noise on the board (split runs on the board, same seed): accuracy and what it buys",
            f"{'cut':>4} {'noise':>6} {'accuracy':>9} {'cost':>7} {'dcor':>6} {'SSIM':>6} "
            f"{'PSNR':>6} {'MSE':>7}",
        ]
        for r in noise_rows:
            acc_text = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            cost = "-" if r["accuracy_cost"] is None else f"{100 * r['accuracy_cost']:+.2f}pt"
            lines.append(
                f"{r['cut']:>4} {r['noise_scale']:>6g} {acc_text:>9} {cost:>7} {r['dcor']:>6.3f} "
                f"{r['ssim']:>6.3f} {r['psnr']:>6.1f} {r['mse']:>7.4f}"
            )
    return "\n".join(lines)


def plot_grid(a: Audit, path: Path) -> Path:
    """Originals on top; under them, per audited cut and noise level, what each attacker
    reconstructs (images as images, signals as lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shape = a.data.shape
    image = len(shape) >= 2 and min(shape[:2]) >= 7
    rows: list[tuple[str, np.ndarray]] = [("original", a.cuts[0].samples["original"])]
    for c in a.cuts:
        tag = f"cut {c.cut}" + (f" noise {c.noise_scale:g}" if c.noise_scale else "")
        rows.append((f"{tag}\nknown weights\nSSIM {c.known.ssim:.2f}", c.samples["known"]))
        rows.append((f"{tag}\nleaked pairs\nSSIM {c.leaked.ssim:.2f}", c.samples["leaked"]))
    cols = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols + 1.2, 1.3 * len(rows)),
                             squeeze=False)  # fmt: skip
    for r, (label, batch) in enumerate(rows):
        for j in range(cols):
            ax = axes[r][j]
            x = batch[j].reshape(shape)
            if image:
                ax.imshow(x if x.ndim == 2 or x.shape[-1] == 3 else x[..., 0], cmap="gray",
                          vmin=0.0, vmax=1.0)  # fmt: skip
            else:
                ax.plot(x.reshape(shape[0], -1) if len(shape) > 1 else x, linewidth=0.6)
                ax.set_ylim(0, 1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"{a.model}: held-out inputs and what a curious server reconstructs", fontsize=8)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.4 / (1.3 * len(rows))))  # room for the title
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def noise_row(c: CutAudit, accuracy: float | None, clean: float | None) -> dict[str, Any]:
    """One row of the noise table (the known-weights attacker: the stronger one)."""
    cost = None if accuracy is None or clean is None else round(clean - accuracy, 4)
    return {
        "cut": c.cut,
        "noise_scale": c.noise_scale,
        "accuracy": accuracy,
        "accuracy_cost": cost,
        "dcor": round(c.dcor, 4),
        "dcor_unbiased": round(c.dcor_unbiased, 4),
        "mse": round(c.known.mse, 4),
        "psnr": round(c.known.psnr, 2),
        "ssim": round(c.known.ssim, 4),
        "ssim_leaked": round(c.leaked.ssim, 4),
    }
