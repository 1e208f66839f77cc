"""The few statistics the blessing needs, exact and dependency-free.

- ``wilson``: a 95% interval for an accuracy measured on n images (honest near 0 and 1,
  where the normal approximation is not).
- ``mcnemar``: the exact one-sided McNemar test for two models scored on the same images.
  Only the images where they disagree carry information: of those ``n = b + c``, model A
  alone is right on ``c`` and model B alone on ``b``. Under "A is no worse than B" each
  discordant image is a fair coin, so ``P(X >= b)`` with ``X ~ Binomial(n, 1/2)`` is the
  chance of seeing B ahead by this much or more by luck.
- ``fisher_greater`` and ``Rates``: the exact one-sided test of two rates from different
  groups, for promote and watch; they live in ``shared/rollout/stats.py`` (the console
  promotes too) and are named here as well.
"""

import math
from dataclasses import dataclass

from ..shared.rollout.stats import Rates, fisher_greater

__all__ = ["Paired", "Rates", "binom_tail", "fisher_greater", "paired", "wilson"]

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``correct`` of ``n`` (``(0, 1)`` when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binom_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


@dataclass(frozen=True)
class Paired:
    """Two models on the same images: ``only_new`` right where the reference is wrong, and
    ``only_ref`` the other way round."""

    images: int
    only_new: int
    only_ref: int

    @property
    def discordant(self) -> int:
        return self.only_new + self.only_ref

    @property
    def delta_points(self) -> float:
        """New minus reference accuracy, in points."""
        return 100.0 * (self.only_new - self.only_ref) / self.images if self.images else 0.0

    @property
    def p_worse(self) -> float:
        """One-sided p-value of "the new model is worse" (small: worse beyond noise)."""
        return binom_tail(self.only_ref, self.discordant)

    @property
    def p_better(self) -> float:
        """One-sided p-value of "the new model is better" (small: better beyond noise)."""
        return binom_tail(self.only_new, self.discordant)


def paired(new_correct: list[bool], ref_correct: list[bool]) -> Paired:
    if len(new_correct) != len(ref_correct):
        raise ValueError("paired scores need the same images")
    only_new = sum(1 for a, b in zip(new_correct, ref_correct, strict=True) if a and not b)
    only_ref = sum(1 for a, b in zip(new_correct, ref_correct, strict=True) if b and not a)
    return Paired(len(new_correct), only_new, only_ref)
