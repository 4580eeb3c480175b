"""Loss curve PNG from a run's events."""

from __future__ import annotations

from pathlib import Path

from tunelab.runs import RunDir, loss_points


def plot_loss(run: RunDir) -> Path | None:
    """Write <run>/loss.png from the logged training (and eval) losses; None when nothing was logged."""
    points = loss_points(run.path)
    train = [(p["step"], p["loss"]) for p in points if p["kind"] == "train"]
    evals = [(p["step"], p["loss"]) for p in points if p["kind"] == "eval"]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(*zip(*train), label="train loss", color="#1f77b4")
    if evals:
        ax.plot(*zip(*evals), label="eval loss", color="#d62728", marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(run.read_manifest().get("run_name", run.path.name))
    ax.grid(alpha=0.3)
    ax.legend()
    path = run.path / "loss.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
