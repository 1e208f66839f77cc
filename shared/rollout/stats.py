"""Fisher's exact test of two rates, for promote and watch, exact and dependency-free.

``fisher_greater``: the one-sided test of two rates from different groups (a canary's bins
against the stable bins): is the first rate higher beyond noise? With both margins fixed,
the first group's count is hypergeometric under "the rates are equal".
"""

import math
from dataclasses import dataclass


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(hits: int, n: int, ref_hits: int, ref_n: int) -> float:
    """One-sided p-value of "``hits``/``n`` is higher than ``ref_hits``/``ref_n``" (Fisher's
    exact test): P(X >= hits) with X hypergeometric. 1.0 when either group is empty."""
    if n <= 0 or ref_n <= 0 or not 0 <= hits <= n or not 0 <= ref_hits <= ref_n:
        if n > 0 and ref_n > 0:
            raise ValueError("counts must lie between 0 and their totals")
        return 1.0
    total, positives = n + ref_n, hits + ref_hits
    top = min(n, positives)
    if hits > top:
        return 0.0
    base = _log_comb(total, n)
    logs = [
        _log_comb(positives, k) + _log_comb(total - positives, n - k) - base
        for k in range(hits, top + 1)
    ]
    peak = max(logs)
    return min(1.0, math.exp(peak) * sum(math.exp(v - peak) for v in logs))


@dataclass(frozen=True)
class Rates:
    """One rate measured on two groups: ``hits`` of ``n`` (new) against ``ref_hits`` of
    ``ref_n`` (reference), e.g. corrections per predicted press."""

    hits: int
    n: int
    ref_hits: int
    ref_n: int

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else 0.0

    @property
    def ref_rate(self) -> float:
        return self.ref_hits / self.ref_n if self.ref_n else 0.0

    @property
    def p_worse(self) -> float:
        """Small: the new group's rate is higher (worse, for an error rate) beyond noise."""
        return fisher_greater(self.hits, self.n, self.ref_hits, self.ref_n)
