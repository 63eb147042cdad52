"""``nerfdata bench``: speed figures measured side by side in one run, printed as ratios.

Timings on shared machines are noisy, so every figure is the median of several repeats and every
comparison is made within one run, never against numbers from another machine or day.
:func:`nerfdata.bench.runner.run_benchmarks` runs them all. The package imports nothing itself, so
that a benchmark run in a fresh interpreter (the cold start's) imports only what it measures.
"""
