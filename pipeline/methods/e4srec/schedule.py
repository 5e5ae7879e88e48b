"""The learning-rate schedule and the wall-clock budget of an E4SRec run.

The schedule is cosine decay after a linear warm-up over a *planned* number of steps. With
a budget, the plan is fitted to it once the step time is measured (and again after each
validation, shrinking only): the cosine then anneals over the steps that will really run,
instead of being cut off at a high learning rate when time runs out.
"""

from __future__ import annotations

import math


class CosineWarmup:
    """LR multiplier for `torch.optim.lr_scheduler.LambdaLR`.

    A callable object rather than a closure so that LambdaLR's state_dict saves its fields
    (`total` can change during a run) and a resumed run continues the same curve.
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup = warmup
        self.total = max(total, 1)

    def __call__(self, step: int) -> float:
        warm = min(self.warmup, self.total // 2)
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = min((step - warm) / max(self.total - warm, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def eval_points(planned: int, n: int) -> set[int]:
    """Steps after which to validate: n points spread evenly, the last one at `planned`."""
    return {max(1, round(planned * k / n)) for k in range(1, n + 1)}


def fit_plan(planned: int, done: int, budget_s: float, elapsed_s: float, step_s: float,
             reserve_s: float, margin: float = 0.95) -> int:
    """The planned step count shrunk (never grown) to what the remaining budget allows.

    budget_s - elapsed_s - reserve_s seconds (reserve: the evaluations still to come) buy
    margin·that/step_s more steps; at least one more step is always planned.
    """
    spare = budget_s - elapsed_s - reserve_s
    more = int(margin * spare / step_s) if step_s > 0 else planned - done
    return max(min(planned, done + more), done + 1)
