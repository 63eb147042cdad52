"""Shared fixtures: small analytic scenes with exact ground truth, and cameras looking at them."""

from pathlib import Path

import pytest
import torch

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.fields.analytic import AnalyticField, Box, Material, Sphere, Torus

CUDA_REASON = "needs a CUDA device (torch.cuda.is_available() is False here): it runs the code path on CUDA"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` run where torch sees a CUDA device and are skipped, saying so, elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=CUDA_REASON)
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


def make_scene() -> AnalyticField:
    """A sphere, a box and a torus, all strictly inside the box (no solid is cut by its walls)."""
    return AnalyticField(
        [
            Sphere((-0.3, 0.0, 0.0), 0.4, Material((0.9, 0.3, 0.2), "noise", 2.0)),
            Box((0.45, -0.1, -0.2), (0.2, 0.3, 0.25), Material((0.2, 0.4, 0.9), "stripes", 3.0)),
            Torus((0.3, -0.35, 0.5), 0.25, 0.08, Material((0.9, 0.8, 0.2), "checker", 8.0)),
        ],
        aabb=[[-1.0, -0.8, -1.0], [1.0, 0.8, 1.0]],
    )


def files_of(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes) but those named in ``skip``, to compare outputs."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def look_at(eye: tuple[float, float, float], target=(0.0, 0.0, 0.0), size: int = 96, fov: float = 50.0) -> Camera:
    c2w = look_at_c2w_opengl(torch.tensor(eye), torch.tensor(target), torch.tensor([0.0, 1.0, 0.0]))
    return Camera(c2w, Intrinsics.from_fov(size, size, fov))


@pytest.fixture(scope="session")
def scene() -> AnalyticField:
    return make_scene()


@pytest.fixture(scope="session")
def cameras() -> list[Camera]:
    return [look_at((2.2, 1.2, 2.4)), look_at((-2.5, 0.6, 1.5)), look_at((0.3, 2.8, -1.9))]
