"""Cameras: intrinsics and pose validation, axis conventions, ray generation (pixel centres at +0.5)."""

import math

import pytest
import torch

from nerfdata.cameras import (
    Camera,
    Intrinsics,
    camera_rays,
    invert_rigid,
    look_at_c2w_opengl,
    opencv_to_opengl,
    opengl_to_opencv,
    ray_aabb_intersect,
    validate_c2w,
)
from nerfdata.errors import PoseError


def random_pose(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3], c2w[:3, 3] = q, torch.randn(3, generator=g, dtype=torch.float64)
    return c2w.float()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "width must be a positive integer"),
        ({"height": -4}, "height must be a positive integer"),
        ({"fl_x": 0.0}, "focal lengths must be positive"),
        ({"fl_y": float("nan")}, "fl_y must be a finite number"),
        ({"cx": float("inf")}, "cx must be a finite number"),
    ],
)
def test_intrinsics_rejects_bad_values(kwargs, message):
    values = {"fl_x": 50.0, "fl_y": 50.0, "cx": 16.0, "cy": 16.0, "width": 32, "height": 32} | kwargs
    with pytest.raises(PoseError, match=message):
        Intrinsics(**values)


def test_intrinsics_from_fov_and_scaling():
    k = Intrinsics.from_fov(200, 100, 90.0)
    assert k.fl_x == pytest.approx(100.0) and (k.cx, k.cy) == (100.0, 50.0)
    half = k.scaled(0.5)
    assert (half.width, half.height, half.fl_x, half.cx) == (100, 50, pytest.approx(50.0), 50.0)


def test_validate_accepts_rigid_and_3x4():
    pose = random_pose(0)
    assert torch.allclose(validate_c2w(pose[:3]), pose)
    slightly_off = pose.clone()
    slightly_off[:3, :3] *= 1.0 + 2e-5  # within the 1e-4 tolerance
    validate_c2w(slightly_off)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p: p[:3, :3].mul_(1.001), "not orthonormal"),
        (lambda p: p[0, 1].add_(0.01), "not orthonormal"),
        (lambda p: p[1, 3].fill_(float("nan")), "NaN or infinite"),
        (lambda p: p[2, 2].fill_(float("inf")), "NaN or infinite"),
        (lambda p: p[:3, 0].neg_(), "reflection"),
        (lambda p: p[3, 0].fill_(0.5), "last row"),
    ],
)
def test_validate_rejects_non_rigid(corrupt, message):
    pose = random_pose(1)
    corrupt(pose)
    with pytest.raises(PoseError, match=message):
        validate_c2w(pose, "frame 3")


def test_validate_names_the_pose_and_shape():
    with pytest.raises(PoseError, match="frame 7: expected a 3x4 or 4x4 matrix"):
        validate_c2w(torch.eye(3), "frame 7")


def test_convention_conversions_round_trip():
    pose = random_pose(2)
    assert torch.allclose(opencv_to_opengl(opengl_to_opencv(pose)), pose)
    assert torch.allclose(invert_rigid(invert_rigid(pose)), pose, atol=1e-6)
    assert torch.allclose(invert_rigid(pose) @ pose, torch.eye(4), atol=1e-6)
    # OpenCV's y and z camera axes are OpenGL's negated; the centre is the same.
    cv = opengl_to_opencv(pose)
    assert torch.allclose(cv[:3, 1], -pose[:3, 1]) and torch.allclose(cv[:3, 2], -pose[:3, 2])
    assert torch.equal(cv[:3, 3], pose[:3, 3])


def test_opengl_pose_and_its_opencv_conversion_give_identical_rays():
    pose = random_pose(3)
    k = Intrinsics(40.0, 42.0, 15.5, 11.0, 31, 23)
    gl = camera_rays(pose, k, convention="opengl")
    cv = camera_rays(opengl_to_opencv(pose), k, convention="opencv")
    torch.testing.assert_close(gl.directions, cv.directions)
    torch.testing.assert_close(gl.origins, cv.origins)


def test_pixel_centre_convention_by_hand():
    # Camera at the origin looking down -z (OpenGL); 4x2 image, fx=fy=2, principal point at the centre.
    k = Intrinsics(fl_x=2.0, fl_y=2.0, cx=2.0, cy=1.0, width=4, height=2)
    rays = camera_rays(torch.eye(4), k)
    # Pixel (0, 0) has its centre at (0.5, 0.5): x = (0.5 - 2) / 2 = -0.75, y_down = (0.5 - 1) / 2 = -0.25.
    expected = torch.tensor([-0.75, 0.25, -1.0])  # OpenGL: y up, looking down -z
    torch.testing.assert_close(rays.directions[0], expected / expected.norm())
    assert rays.z_per_range[0].item() == pytest.approx(1.0 / expected.norm().item())
    # Row-major order: the last ray is pixel (3, 1), centre (3.5, 1.5).
    expected_last = torch.tensor([0.75, -0.25, -1.0])
    torch.testing.assert_close(rays.directions[-1], expected_last / expected_last.norm())


def test_z_per_range_gives_constant_depth_on_a_fronto_parallel_plane():
    camera = Camera(look_at_c2w_opengl(torch.tensor([0.0, 0.0, 5.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0])),
                    Intrinsics.from_fov(16, 12, 70.0))
    rays = camera.rays()
    ranges = 5.0 / -rays.directions[:, 2]  # distance to the plane z = 0 along each ray
    torch.testing.assert_close(ranges * rays.z_per_range, torch.full_like(ranges, 5.0))


def test_look_at_points_the_camera_at_the_target():
    eye, target = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-0.5, 0.2, 0.1])
    camera = Camera(look_at_c2w_opengl(eye, target, torch.tensor([0.0, 1.0, 0.0])), Intrinsics.from_fov(8, 8, 60.0))
    torch.testing.assert_close(camera.forward, (target - eye) / (target - eye).norm())
    assert camera.c2w_opengl[1, 1] > 0  # the image's up is the world's up side


def test_ray_aabb_intersect():
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    t_near, t_far = ray_aabb_intersect(origins, directions, box)
    assert t_near.tolist()[:2] == [2.0, 0.0] and t_far.tolist()[:2] == [4.0, 1.0]
    assert t_near[2] >= t_far[2]  # misses
    diagonal = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0, 1.0]]), dim=-1)
    t_near, t_far = ray_aabb_intersect(torch.tensor([[-2.0, -2.0, -2.0]]), diagonal, box)
    assert t_near.item() == pytest.approx(math.sqrt(3)) and t_far.item() == pytest.approx(3 * math.sqrt(3))
