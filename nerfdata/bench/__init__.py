"""``nerfdata bench``: speed figures measured side by side in one run, printed as ratios.

Timings on shared machines are noisy, so every figure is the median of several repeats and every
comparison is made within one run, never against numbers from another machine or day.
"""

from nerfdata.bench.runner import run_benchmarks

__all__ = ["run_benchmarks"]
