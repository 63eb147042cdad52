"""The peak-memory benchmark runs a real all-label render in a fresh process and reads its peak RSS."""

from pathlib import Path

from nerfdata.bench.memory import bench_peak_memory

ROOT = Path(__file__).resolve().parents[1]


def test_peak_memory_of_a_small_all_label_render_is_measured():
    figures = bench_peak_memory(ROOT / "scenes" / "tabletop", width=32, height=18)
    assert "depth_modes" in figures["outputs"] and "normals" in figures["outputs"]
    # A process that imported torch and rendered holds more than 100 MiB and, at 32x18, far less than 2 GiB.
    assert 100 * 2**20 < figures["peak_bytes"] < 2 * 2**30
