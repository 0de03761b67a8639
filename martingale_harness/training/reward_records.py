"""The reward's records: its coefficients and one batch's breakdown (shared by the reward and its diagnostics)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

METRIC_PREFIX = "martingale/"


@dataclass(frozen=True)
class RewardWeights:
    """The coefficients of the three components (all >= 0; checked by the training config)."""

    ms_coef: float = 1.0
    info_coef: float = 0.5
    format_penalty: float = 1.0


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward of every completion of one batch and its components (NaN = not applicable)."""

    total: NDArray[np.float64]
    ms: NDArray[np.float64]
    """The MS term before ``ms_coef``: ``-sign(MS) · n · s_i``."""
    info: NDArray[np.float64]
    """The information term before ``info_coef``."""
    format_failed: NDArray[np.bool_]
    prior_failed: NDArray[np.bool_]
    batch_ms: float
    """The Martingale Score of the batch's readable pairs (NaN when undefined)."""
    shares: NDArray[np.float64]
    """``s_i`` (0 where the sample is not in the fit)."""
    n_pairs: int
    """Completions in the MS fit (both beliefs read)."""
    prior: NDArray[np.float64] | None = None
    posterior: NDArray[np.float64] | None = None
    """The beliefs that were scored (NaN where not read)."""
    items: tuple[int, ...] = ()
    """The training episode of each completion (where the caller said)."""

    def metrics(self) -> dict[str, float]:
        """Per-step values for the training log; undefined ones are left out, never logged as NaN."""
        values = {
            "reward": _mean(self.total),
            "reward_ms": _mean(self.ms),
            "reward_info": _mean(self.info),
            "format_failure_rate": float(self.format_failed.mean()) if self.format_failed.size else math.nan,
            "prior_failure_rate": float(self.prior_failed.mean()) if self.prior_failed.size else math.nan,
            "batch_ms": self.batch_ms,
            "batch_pairs": float(self.n_pairs),
        }
        return {METRIC_PREFIX + k: v for k, v in values.items() if not math.isnan(v)}


def _mean(values: NDArray[np.float64]) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan
