"""The planarity prior: zero on planes, saturating at depth edges, triplets inside their images, and a
training step that follows it."""

from dataclasses import replace

import pytest
import torch

from nerfdata.cameras import Camera, Rays
from nerfdata.errors import ConfigError
from nerfdata.jobs.planarity import pixel_triplets, planarity_loss
from nerfdata.jobs.train import _load_images as load_images
from nerfdata.jobs.train import start_or_resume, train_step
from nerfdata.render.renderer import RenderOptions
from nerfdata.writers.transforms import read_transforms
from tests.conftest import look_at
from tests.test_train import config, tiny_dataset  # noqa: F401  (the fixture)


def _plane_depths(camera: Camera, normal: torch.Tensor, offset: float) -> torch.Tensor:
    """z-depth of the plane ``normal . x = offset`` at the camera's pixels, ``(h, w)`` (negative: behind)."""
    rays = camera.rays()
    t = (offset - rays.origins @ normal) / (rays.directions @ normal)
    return rays.depth_z(t).reshape(camera.intrinsics.height, camera.intrinsics.width)


def test_a_plane_in_any_orientation_costs_nothing_and_a_step_costs_much():
    generator = torch.Generator().manual_seed(0)
    camera = look_at((0.3, 0.4, 3.0), size=64)
    for _ in range(5):
        facing = torch.nn.functional.normalize(torch.tensor([0.3, 0.4, 3.0]), dim=0)  # towards the camera
        normal = torch.nn.functional.normalize(facing + 0.5 * torch.randn(3, generator=generator), dim=0)
        ranges = _plane_depths(camera, normal, 0.0).double()  # planes through the point looked at
        seen = (ranges > 0).double()  # pixels whose ray meets the plane in front of the camera
        assert seen.mean() > 0.5
        for a, b, c in ((ranges[:, :-2], ranges[:, 1:-1], ranges[:, 2:]), (ranges[:-2], ranges[1:-1], ranges[2:])):
            triplets = torch.stack([a, b, c]).reshape(3, -1)
            opacity = torch.stack([seen[: a.shape[0], : a.shape[1]]] * 3).reshape(3, -1) * (triplets > 0)
            assert planarity_loss(triplets, opacity) < 1e-6
    step = torch.tensor([[2.0], [2.0], [2.02]])  # a 1% step, as a photometric loss learns at an albedo edge
    assert planarity_loss(step, torch.ones(3, 1)) > 0.45  # about half the ceiling: PLANARITY_SCALE is 1%


def test_a_depth_edge_is_past_the_saturation():
    def slope(jump: float) -> float:
        far = torch.tensor(2.0 * (1.0 + jump), requires_grad=True)
        planarity_loss(torch.stack([torch.tensor([2.0]), torch.tensor([2.0]), far[None]]), torch.ones(3, 1)).backward()
        return abs(float(far.grad))

    assert slope(0.5) < 0.01 * slope(0.01)  # an object's edge is barely pulled; a learned step is


def test_transparent_triplets_are_left_out():
    step = torch.tensor([[2.0, 2.0], [2.0, 2.0], [2.02, 2.02]])
    opacity = torch.tensor([[1.0, 1.0], [1.0, 0.2], [1.0, 1.0]])
    assert planarity_loss(step, opacity) == pytest.approx(planarity_loss(step[:, :1], opacity[:, :1]).item())
    assert planarity_loss(step, torch.zeros(3, 2)) == 0.0


def test_triplets_are_three_adjacent_pixels_of_one_image():
    widths, heights = torch.tensor([5, 9, 3]), torch.tensor([4, 3, 7])
    starts = torch.cumsum(widths * heights, 0) - widths * heights
    triplets = pixel_triplets(widths, heights, 4000, torch.Generator().manual_seed(1))
    image = torch.searchsorted(starts, triplets, right=True) - 1
    assert (image == image[1]).all()  # all three in the centre's image
    local = triplets - starts[image]
    x, y = local % widths[image], local // widths[image]
    assert (y < heights[image]).all()
    along_row = (y[0] == y[1]) & (y[1] == y[2]) & (x[0] + 1 == x[1]) & (x[1] + 1 == x[2])
    along_column = (x[0] == x[1]) & (x[1] == x[2]) & (y[0] + 1 == y[1]) & (y[1] + 1 == y[2])
    assert (along_row | along_column).all() and along_row.float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert set(image[1].tolist()) == {0, 1, 2}


def test_a_training_step_follows_the_prior_with_its_weight(tiny_dataset, tmp_path):  # noqa: F811
    # The same seed and batch (triplets are drawn whatever the weight): only the prior's weight differs.
    dataset = read_transforms(tiny_dataset)
    frames = dataset.split("train")
    rays = Rays.cat([f.camera.rays() for f in frames])
    targets = load_images(frames, 1.0)  # the images on white
    sizes = torch.tensor([[f.camera.intrinsics.width, f.camera.intrinsics.height] for f in frames])
    options = RenderOptions(num_steps=96, normals=False, stratified=True, min_transmittance=1e-4)
    fields = []
    for name, weight in (("faint", 1e-12), ("strong", 1.0), ("faint again", 1e-12)):
        state = start_or_resume(config(tiny_dataset, tmp_path / name, planarity_weight=1e-12), dataset)
        for _ in range(40):  # until surfaces are opaque: the prior weighs opaque triplets only
            train_step(state, rays, targets, options, sizes)
        state.config = replace(state.config, planarity_weight=weight)
        for _ in range(3):
            train_step(state, rays, targets, options, sizes)
        fields.append(torch.cat([p.detach().flatten() for p in state.field.parameters()]))
    assert torch.equal(fields[0], fields[2])  # a step is deterministic
    assert not torch.allclose(fields[0], fields[1], atol=1e-6)  # and the prior's gradient moves the weights


@pytest.mark.parametrize(("key", "value", "message"), [
    ("planarity_weight", -1.0, "planarity_weight must be >= 0"),
    ("planarity_rays", 0.0, "planarity_rays must be in"),
    ("planarity_rays", 1.5, "planarity_rays must be in"),
])
def test_bad_planarity_settings_are_refused(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, tmp_path / "out", **{key: value})
