"""The step arithmetic a user should see before the first step (steps vs epochs, made explicit)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tunelab.errors import ConfigError


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
        return "\n".join(lines + [self._total_line()])

    def _total_line(self) -> str:
        if self.max_steps > 0:
            epochs = self.total_steps / max(self.steps_per_epoch, 1)
            return (f"total steps: {self.total_steps} (max_steps={self.max_steps} wins over "
                    f"num_train_epochs={self.epochs:g}; that is {epochs:.2f} epochs)")
        return f"total steps: {self.total_steps} ({self.epochs:g} epochs x {self.steps_per_epoch} steps)"

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


@dataclass
class GroupStepPlan(StepPlan):
    """The online stages' (grpo, rloo) steps: each optimizer step samples ``generations`` completions for each of its
    prompts in one generation round, then trains on them over ``grad_accum`` micro-batches."""

    generations: int = 1

    @property
    def prompts_per_step(self) -> int:
        return self.effective_batch // self.generations

    def describe(self) -> str:
        skipped = self.rows % self.prompts_per_step
        lines = [
            f"samples: {self.samples} prompts, each answered num_generations={self.generations} times",
            f"effective batch: {self.batch_size} (per device) x {self.grad_accum} (gradient "
            f"accumulation) x {self.world_size} (devices) = {self.effective_batch} completions per "
            f"step = {self.prompts_per_step} prompts x {self.generations} generations",
            f"generation: one round per step samples all {self.effective_batch} completions, "
            f"trained on in {self.grad_accum} micro-batch{'es' if self.grad_accum > 1 else ''} "
            f"of {self.batch_size} per device",
            f"steps per epoch: {self.steps_per_epoch} ({self.rows} prompts / "
            f"{self.prompts_per_step} per step"
            + (f"; the last {skipped} of each shuffled epoch are left out: TRL samples whole "
               "steps only)" if skipped else ")"),
        ]
        return "\n".join(lines + [self._total_line()])

    def rows_of_step(self, step: int) -> tuple[int, int, int]:
        """(epoch, first, last): the prompts of optimizer step ``step`` in its epoch's order."""
        epoch, index = divmod(step - 1, max(self.steps_per_epoch, 1))
        first = index * self.prompts_per_step + 1
        return epoch + 1, first, first + self.prompts_per_step - 1


def plan_group_steps(*, samples: int, rows: int, batch_size: int, grad_accum: int, world_size: int,
                     epochs: float, max_steps: int, generations: int) -> GroupStepPlan:
    """The optimizer steps TRL's GRPOTrainer (and RLOOTrainer) runs: a step holds whole groups of ``generations``
    completions (TRL's RepeatSampler), so an epoch is rows // prompts-per-step steps.

    Raises ConfigError when ``generations`` does not divide the completions of one step, or the
    data has fewer prompts than one step needs.
    """
    completions = batch_size * grad_accum * world_size
    if completions % generations:
        raise _indivisible(completions, batch_size, grad_accum, world_size, generations)
    per_step = completions // generations
    if rows < per_step:
        raise ConfigError(f"one step needs {per_step} prompts ({completions} completions / "
                          f"num_generations={generations}) and the data has {rows}",
                          where="key 'per_device_train_batch_size'", key="per_device_train_batch_size",
                          value=batch_size, hint="use more prompts, a smaller batch, or more generations")
    steps_per_epoch = rows // per_step
    total = max_steps if max_steps > 0 else math.ceil(epochs * steps_per_epoch)
    return GroupStepPlan(samples=samples, rows=rows, batch_size=batch_size, grad_accum=grad_accum,
                         world_size=world_size, epochs=epochs, max_steps=max_steps,
                         steps_per_epoch=steps_per_epoch, total_steps=total,
                         batches_per_epoch=steps_per_epoch * grad_accum, generations=generations)


def _indivisible(completions: int, batch: int, accum: int, world: int, generations: int) -> ConfigError:
    valid = [n for n in range(2, completions + 1) if completions % n == 0]
    batches = [b for b in range(batch, batch + generations + 1) if b * accum * world % generations == 0]
    return ConfigError(
        f"num_generations={generations} must divide the completions of one step: "
        f"per_device_train_batch_size ({batch}) x gradient_accumulation_steps ({accum}) x "
        f"devices ({world}) = {completions}, as each step holds whole groups (TRL's rule)",
        where="key 'num_generations'", key="num_generations", value=generations,
        allowed=", ".join(map(str, valid)) or "none: the step has a single completion",
        hint=f"set num_generations to one of {', '.join(map(str, valid)) or '(none)'}"
             + (f", or per_device_train_batch_size to {batches[0]}" if batches else ""))


def generations_per_prompt(cfg) -> int:
    """Completions sampled per prompt in a step: the online stages' (grpo, rloo)
    num_generations, else 1 (a stage that trains on given samples)."""
    from tunelab.train.stages import ONLINE_STAGES

    return cfg.rl.num_generations if cfg.method.stage in ONLINE_STAGES else 1


def plan_for(cfg, **counts) -> StepPlan:
    """``plan_steps`` or, for a stage that samples groups of completions, ``plan_group_steps``;
    ``counts`` are plan_steps' keyword arguments."""
    generations = generations_per_prompt(cfg)
    if generations > 1:
        counts.pop("drop_last", None)
        return plan_group_steps(**counts, generations=generations)
    return plan_steps(**counts)
