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
    batches_per_epoch: int = 0
    drop_last: bool = False

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world_size

    def describe(self) -> str:
        packed = f" packed into {self.rows} rows" if self.rows != self.samples else ""
        lines = [
            f"samples: {self.samples}{packed}",
            f"effective batch: {self.batch_size} (per device) x {self.grad_accum} (gradient "
            f"accumulation) x {self.world_size} (devices) = {self.effective_batch} rows per step",
            f"steps per epoch: {self.steps_per_epoch}{self._rounding_note()}",
        ]
        if self.max_steps > 0:
            epochs = self.total_steps / max(self.steps_per_epoch, 1)
            lines.append(f"total steps: {self.total_steps} (max_steps={self.max_steps} wins over "
                         f"num_train_epochs={self.epochs:g}; that is {epochs:.2f} epochs)")
        else:
            lines.append(f"total steps: {self.total_steps} ({self.epochs:g} epochs x "
                         f"{self.steps_per_epoch} steps)")
        return "\n".join(lines)

    def _rounding_note(self) -> str:
        """Why steps per epoch is not simply rows / effective batch, when it is not."""
        if self.batches_per_epoch % self.grad_accum == 0:
            return ""
        left = self.batches_per_epoch % self.grad_accum
        return (f" ({self.batches_per_epoch} batches per device / {self.grad_accum}, rounded up: "
                f"the last step of each epoch accumulates {left} batch{'es' if left > 1 else ''})")

    def rows_of_step(self, step: int) -> tuple[int, int, int]:
        """(epoch, first, last) for optimizer step ``step`` (1-based): the 1-based positions in
        that epoch's (shuffled) row order that the step trained on, across all devices."""
        epoch, index = divmod(step - 1, max(self.steps_per_epoch, 1))
        first = index * self.effective_batch + 1
        return epoch + 1, first, min(first + self.effective_batch - 1, self.rows)


def plan_steps(*, samples: int, rows: int, batch_size: int, grad_accum: int, world_size: int,
               epochs: float, max_steps: int, drop_last: bool = False) -> StepPlan:
    """The optimizer steps Hugging Face Trainer (transformers 5) will run, computed its way.

    Each process's dataloader (accelerate shards the batches of one sampler over the processes)
    has ceil(rows / batch) / processes batches, rounded up (down with ``dataloader_drop_last``);
    an epoch is that many batches / gradient accumulation, rounded UP (the last step accumulates
    what is left); epochs give ceil(epochs x steps per epoch) steps; ``max_steps`` > 0 wins.
    """
    rounding = math.floor if drop_last else math.ceil
    batches = rounding(rounding(rows / batch_size) / world_size)
    steps_per_epoch = max(math.ceil(batches / grad_accum), 1)
    total = max_steps if max_steps > 0 else math.ceil(epochs * steps_per_epoch)
    return StepPlan(samples=samples, rows=rows, batch_size=batch_size, grad_accum=grad_accum,
                    world_size=world_size, epochs=epochs, max_steps=max_steps,
                    steps_per_epoch=steps_per_epoch, total_steps=total, batches_per_epoch=batches,
                    drop_last=drop_last)
