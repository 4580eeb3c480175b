"""The step arithmetic a user should see before the first step (steps vs epochs, made explicit)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class StepPlan:
    samples: int
    rows: int
    batch_size: int
    grad_accum: int
    world_size: int
    epochs: float
    max_steps: int
    steps_per_epoch: int
    total_steps: int

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world_size

    def describe(self) -> str:
        packed = f" packed into {self.rows} rows" if self.rows != self.samples else ""
        lines = [
            f"samples: {self.samples}{packed}",
            f"effective batch: {self.batch_size} (per device) x {self.grad_accum} (gradient "
            f"accumulation) x {self.world_size} (devices) = {self.effective_batch} rows per step",
            f"steps per epoch: {self.steps_per_epoch}",
        ]
        if self.max_steps > 0:
            epochs = self.total_steps / max(self.steps_per_epoch, 1)
            lines.append(f"total steps: {self.total_steps} (max_steps={self.max_steps} wins over "
                         f"num_train_epochs={self.epochs:g}; that is {epochs:.2f} epochs)")
        else:
            lines.append(f"total steps: {self.total_steps} ({self.epochs:g} epochs x "
                         f"{self.steps_per_epoch} steps)")
        return "\n".join(lines)


def plan_steps(*, samples: int, rows: int, batch_size: int, grad_accum: int, world_size: int,
               epochs: float, max_steps: int) -> StepPlan:
    """Mirror Hugging Face Trainer's arithmetic: batches per process, then optimizer steps."""
    batches_per_process = math.ceil(math.ceil(rows / world_size) / batch_size)
    steps_per_epoch = max(batches_per_process // grad_accum, 1)
    total = max_steps if max_steps > 0 else math.ceil(epochs * steps_per_epoch)
    return StepPlan(samples=samples, rows=rows, batch_size=batch_size, grad_accum=grad_accum,
                    world_size=world_size, epochs=epochs, max_steps=max_steps,
                    steps_per_epoch=steps_per_epoch, total_steps=total)
