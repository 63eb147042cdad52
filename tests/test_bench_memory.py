"""The peak-memory benchmark runs a real all-label render in a fresh process and reads its peak RSS."""

from pathlib import Path

import numpy as np

from nerfdata.bench.memory import bench_peak_memory

ROOT = Path(__file__).resolve().parents[1]


def test_peak_memory_of_a_small_all_label_render_is_measured():
    figures = bench_peak_memory(ROOT / "scenes" / "tabletop", width=32, height=18)
    assert "depth_modes" in figures["outputs"] and "normals" in figures["outputs"]
    # A process that imported torch and rendered holds more than 100 MiB and, at 32x18, far less than 2 GiB.
    assert 100 * 2**20 < figures["peak_bytes"] < 2 * 2**30


def test_a_large_parent_does_not_count_as_the_childs_memory():
    """``ru_maxrss`` carries the forking parent's size across ``exec`` on Linux; the figure must not."""
    small = bench_peak_memory(ROOT / "scenes" / "tabletop", width=32, height=18)["peak_bytes"]
    ballast = np.ones(2 * small // 8)  # the parent now holds twice what the child needs  # noqa: F841
    measured = bench_peak_memory(ROOT / "scenes" / "tabletop", width=32, height=18)["peak_bytes"]
    assert measured < 1.5 * small
