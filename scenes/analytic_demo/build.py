"""Build the analytic demo field: ``python scenes/analytic_demo/build.py`` writes field.json + field.safetensors here.

A ground slab with a sphere, a box and a torus on it; exact ground truth, no training needed.
"""

from pathlib import Path

from nerfdata.fields.analytic import AnalyticField, Box, Material, Sphere, Torus
from nerfdata.fields.checkpoint import save_field
from nerfdata.fields.occupancy import occupancy_grid_from_density


def demo_field() -> AnalyticField:
    return AnalyticField(
        [
            Box((0.0, -0.55, 0.0), (1.2, 0.05, 1.2), Material((0.75, 0.75, 0.72), "checker", 2.5)),
            Sphere((-0.35, -0.15, 0.1), 0.35, Material((0.85, 0.3, 0.25), "noise", 1.5)),
            Box((0.45, -0.2, -0.3), (0.2, 0.3, 0.2), Material((0.25, 0.4, 0.85), "stripes", 3.0)),
            Torus((0.35, -0.42, 0.45), 0.25, 0.08, Material((0.9, 0.8, 0.2), "checker", 8.0)),
        ],
        aabb=[[-1.3, -0.65, -1.3], [1.3, 0.8, 1.3]],
    )


if __name__ == "__main__":
    field = demo_field()
    occupancy = occupancy_grid_from_density(field.density, field.aabb, resolution=128)
    print(save_field(field, Path(__file__).parent, occupancy, metadata={"scene": "analytic_demo"}))
