"""Length-sorted batches within a token budget, shared by the scoring engine and the trainer."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["plan_batches"]


def plan_batches(lengths: Sequence[int], *, token_budget: int = 16384, max_batch_size: int = 128) -> list[list[int]]:
    """Group indices into batches, longest first, each within ``token_budget`` padded tokens.

    A text longer than the budget on its own still gets a batch of one.
    """
    if token_budget < 1 or max_batch_size < 1:
        raise ValueError("token_budget and max_batch_size must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        new_width = max(width, lengths[i])
        if current and (len(current) + 1 > max_batch_size or (len(current) + 1) * new_width > token_budget):
            batches.append(current)
            current, new_width = [], lengths[i]
        current.append(i)
        width = new_width
    if current:
        batches.append(current)
    return batches
