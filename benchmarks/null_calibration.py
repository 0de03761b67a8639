"""Null calibration of the Martingale Score's 95 % intervals on the simulated exact Bayesian.

For each of RUNS seeds, sim/bayesian answers N questions (prior, one piece of evidence, posterior);
the true MS is 0. Prints how often the classic OLS t interval and the robust (HC3) interval cover 0.

    python benchmarks/null_calibration.py [--runs 1000] [--n 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats as sps

from martingale_harness.backends.simulated import SimAgent
from martingale_harness.stats.martingale import martingale_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()

    keys = [f"question {i}" for i in range(args.n)]
    classic = robust = 0
    start = time.perf_counter()
    for seed in range(args.runs):
        agent = SimAgent("bayesian", seed=seed)
        beliefs = np.array([agent.path(k, 1).stated for k in keys])
        res = martingale_score(beliefs[:, 0], beliefs[:, 1])
        half = sps.t.ppf(0.975, res.n - 2) * res.se
        classic += abs(res.slope) <= half
        robust += res.ci_low <= 0.0 <= res.ci_high
    elapsed = time.perf_counter() - start
    sd = np.sqrt(0.95 * 0.05 / args.runs)
    print(f"sim/bayesian, n = {args.n}, {args.runs} runs ({elapsed:.1f} s); binomial sd at 95 %: {sd:.3%}")
    print(f"classic OLS 95% CI covers MS = 0: {classic / args.runs:.1%}")
    print(f"robust (HC3) 95% CI covers MS = 0: {robust / args.runs:.1%}")


if __name__ == "__main__":
    main()
