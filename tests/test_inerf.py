"""Pose inversion: SE(3) updates, perturbation presets, the iNeRF solver, targets and their BOP twin."""

import copy
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl, validate_c2w
from nerfdata.errors import ConfigError, NerfDataError, PoseError
from nerfdata.fields.analytic import AnalyticField, Box, Material, Sphere
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.jobs.inerf import (
    InerfSolveConfig,
    InerfTargetsConfig,
    describe_results,
    hypothesis_starts,
    read_targets,
    run_inerf_solve,
    run_inerf_targets,
)
from nerfdata.labels.inerf import SolverConfig, interest_points, sampling_pool, solve_pose
from nerfdata.labels.objects import field_objects, model_to_camera
from nerfdata.labels.pose_perturbation import (
    Perturbation,
    PerturbationConfig,
    apply_perturbation,
    draw_perturbations,
    pose_errors,
)
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.writers.bop import bop_camera_entry, bop_gt_entry
from tests.conftest import files_of

FIELD = Path("scenes/analytic_demo")
UP = torch.tensor([0.0, 1.0, 0.0])


def targets_config(out: Path, **kwargs) -> InerfTargetsConfig:
    base = dict(field=FIELD, out=out, num=2, seed=3, width=32, height=24, mesh_resolution=24)
    return InerfTargetsConfig(**{**base, **kwargs})


@pytest.fixture(scope="module")
def targets_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inerf") / "targets"
    run_inerf_targets(targets_config(out), show_progress=False)
    return out


# ------------------------------------------------------------------------------------- poses


@pytest.mark.parametrize("preset,rot,trans", [("inerf", 40.0, 0.1), ("pinerf", 15.0, 0.25)])
def test_presets_draw_within_their_ranges_and_errors_match_the_draw(preset, rot, trans):
    gt = look_at_c2w_opengl(torch.tensor([0.0, 1.0, 3.0]), torch.zeros(3), UP).double()
    draws = draw_perturbations(PerturbationConfig(preset), 200, torch.Generator().manual_seed(1))
    for draw in draws:
        assert draw.translation.abs().max() <= trans
        if preset == "inerf":
            assert abs(draw.description["angle_deg"]) <= rot and draw.rot_deg <= rot + 1e-9
        else:
            assert max(abs(a) for a in draw.description["euler_xyz_deg"]) <= rot
        rot_err, trans_err = pose_errors(apply_perturbation(gt, draw), gt)
        assert abs(rot_err.item() - draw.rot_deg) < 1e-5
        assert abs(trans_err.item() - draw.translation.norm().item()) < 1e-9
    assert max(d.rot_deg for d in draws) > 0.8 * rot  # the range is used, not a fraction of it
    preset = PerturbationConfig("inerf", rot_deg=2.0, trans=0.01)
    custom = draw_perturbations(preset, 50, torch.Generator().manual_seed(2))
    assert all(d.rot_deg <= 2.0 + 1e-9 and d.translation.abs().max() <= 0.01 for d in custom)


# ------------------------------------------------------------------------------------- solver


def _textured_field() -> AnalyticField:
    # Smooth textures and a soft surface: the colour changes continuously with the sample position.
    return AnalyticField(
        [
            Sphere((0.0, 0.0, 0.0), 0.5, Material(pattern="noise", frequency=1.5)),
            Box((0.0, -0.6, 0.0), (1.0, 0.05, 1.0), Material(color=(0.9, 0.6, 0.3), pattern="stripes", frequency=1.0)),
        ],
        aabb=[[-1.1, -0.7, -1.1], [1.1, 0.6, 1.1]],
        surface_width=0.01,
    )


def _rotated(
    gt: torch.Tensor, degrees: float, axis: tuple[float, float, float], shift: tuple[float, float, float]
) -> torch.Tensor:
    axis_ = np.asarray(axis) / np.linalg.norm(axis)
    rotation = torch.from_numpy(Rotation.from_rotvec(axis_ * math.radians(degrees)).as_matrix())
    return apply_perturbation(gt, Perturbation(rotation, torch.tensor(shift, dtype=torch.float64), degrees, {}))


def _solver_case() -> tuple[AnalyticField, object, Intrinsics, torch.Tensor, np.ndarray]:
    field = _textured_field()
    occupancy = occupancy_grid_from_density(field.density, field.aabb, 32)
    intrinsics = Intrinsics.from_fov(48, 48, 45.0)
    gt = look_at_c2w_opengl(torch.tensor([0.5, 1.2, 2.6]), torch.zeros(3), UP).double()
    target = render_image(field, Camera(gt.float(), intrinsics), RenderOptions(num_steps=256, normals=False), occupancy)
    return field, occupancy, intrinsics, gt, target.rgb.numpy()


def test_solver_converges_and_keeps_the_best_hypothesis():
    field, occupancy, intrinsics, gt, target = _solver_case()
    near = _rotated(gt, 5.0, (0.3, 0.8, -0.5), (0.03, -0.02, 0.02))
    far = _rotated(gt, 60.0, (1.0, 0.0, 0.2), (0.3, 0.2, -0.1))
    starts = torch.stack([far, near])  # both solved in one batch; the good one is not first
    config = SolverConfig(iters=100, rays=256, num_steps=256, halving_steps=25, converge_window=0)
    result = solve_pose(field, occupancy, target, intrinsics, starts, config)
    rot_err, trans_err = pose_errors(result.est_c2w, gt)
    assert result.best == 1 and result.losses[1] < result.losses[0]
    assert result.steps == [25, 100]  # successive halving set the far start aside at the first halving
    assert result.iters == 100 and not result.converged
    assert rot_err < 1.0 and trans_err < 0.03
    assert pose_errors(near, gt)[1] > 0.04  # it did move the camera
    for pose in result.final_c2w:
        validate_c2w(pose)  # the update stays rigid


def test_solver_stops_once_settled_and_prunes_worse_basins():
    field, occupancy, intrinsics, gt, target = _solver_case()
    near = _rotated(gt, 5.0, (0.3, 0.8, -0.5), (0.03, -0.02, 0.02))
    stuck = _rotated(gt, 25.0, (1.0, 0.0, 0.2), (0.3, 0.2, -0.1))  # drifts in another basin
    # No halving: only the settled leader can set the stuck start aside, and only settling can stop early.
    config = SolverConfig(iters=300, rays=256, num_steps=256, halving_steps=0, converge_window=20)
    result = solve_pose(field, occupancy, target, intrinsics, torch.stack([stuck, near]), config)
    assert result.converged and result.best == 1 and result.iters < 300
    assert result.losses[0] > config.prune_ratio * result.losses[1]
    assert pose_errors(result.final_c2w[0], gt)[0] > 5.0
    rot_err, trans_err = pose_errors(result.est_c2w, gt)
    assert rot_err < 1.0 and trans_err < 0.03
    # Without pruning the stuck start keeps the solve running; without settling every step runs.
    both = torch.stack([stuck, near])
    unpruned = solve_pose(field, occupancy, target, intrinsics, both, replace(config, prune_ratio=0.0))
    assert unpruned.steps[0] > result.iters
    every_step = replace(config, converge_window=0, iters=60)
    unsettled = solve_pose(field, occupancy, target, intrinsics, near[None], every_step)
    assert unsettled.iters == 60 and not unsettled.converged


def test_interest_sampling_pools():
    image = np.ones((40, 40, 3))
    image[10:30, 12:28] = 0.2  # a dark square: four corners
    points = interest_points(image)
    for corner in ((10, 12), (10, 27), (29, 12), (29, 27)):  # (row, col) of the square's corner pixels
        assert np.abs(points - np.array(corner)).max(axis=1).min() <= 2
    assert len(sampling_pool(image, "random")) == 1600
    point_pool = sampling_pool(image, "interest-points", min_points=1)
    region_pool = sampling_pool(image, "interest-regions", min_points=1)
    assert set(point_pool.tolist()) <= set(region_pool.tolist())
    # 3 dilations with a 5x5 kernel grow each point by 6 pixels each way: at most 13x13 per point.
    assert len(point_pool) < len(region_pool) <= 169 * len(point_pool)
    flat = np.ones((40, 40, 3))
    assert len(sampling_pool(flat, "interest-regions")) == 1600  # textureless: falls back to every pixel
    # A render of a smooth-textured object has enough keypoints not to fall back (Harris corners did).
    field = _textured_field()
    c2w = look_at_c2w_opengl(torch.tensor([0.5, 1.2, 2.6]), torch.zeros(3), UP)
    camera = Camera(c2w, Intrinsics.from_fov(96, 96, 45.0))
    render = render_image(field, camera, RenderOptions(num_steps=128, normals=False)).rgb.numpy()
    assert len(interest_points(render)) >= 64 and len(sampling_pool(render, "interest-points")) < 96 * 96


# ------------------------------------------------------------------------------------- targets


def test_targets_file(targets_dir):
    document = json.loads((targets_dir / "inerf/targets.json").read_text())
    assert document["perturbation"]["preset"] == "inerf" and document["meters_per_unit"] == 1.0
    assert len(document["targets"]) == 2
    for entry in document["targets"]:
        keys = {"id", "image", "K", "width", "height", "gt_c2w", "init_c2w", "rot_perturb_deg", "trans_perturb", "seed"}
        assert set(entry) >= keys
        assert (targets_dir / entry["image"]).is_file()
        gt = torch.tensor(entry["gt_c2w"], dtype=torch.float64)
        init = torch.tensor(entry["init_c2w"], dtype=torch.float64)
        rot_err, _ = pose_errors(init, gt)
        assert abs(rot_err.item() - entry["rot_perturb_deg"]) < 1e-4 and rot_err <= 40.0 + 1e-6
        # The start orbits the pivot (on gt's optical axis): before the shift, the pivot is on the start's axis too.
        pivot = torch.tensor(entry["pivot"], dtype=torch.float64)
        gt_cam = torch.linalg.inv(gt) @ torch.cat([pivot, torch.ones(1, dtype=torch.float64)])
        assert gt_cam[:2].abs().max() < 1e-9 and 0.5 < -gt_cam[2] < 8.0  # at the depth of the scene it sees
        orbit = init.clone()
        orbit[:3, 3] -= torch.tensor(entry["trans_perturb"], dtype=torch.float64)
        start_cam = torch.linalg.inv(orbit) @ torch.cat([pivot, torch.ones(1, dtype=torch.float64)])
        assert torch.allclose(start_cam, gt_cam, atol=1e-9)
    _, targets = read_targets(targets_dir)
    assert [t.id for t in targets] == [0, 1]


def test_targets_with_the_same_seed_are_identical(targets_dir, tmp_path):
    again = tmp_path / "again"
    run_inerf_targets(targets_config(again), show_progress=False)
    assert files_of(again) == files_of(targets_dir)
    other = tmp_path / "other"
    run_inerf_targets(targets_config(other, seed=4, mesh=False), show_progress=False)
    assert files_of(other)["inerf/targets.json"] != files_of(targets_dir)["inerf/targets.json"]


def test_bop_uses_millimetres_and_opencv_axes_by_hand():
    # A camera 2 units in front of the origin on +z, looking at it; OpenCV axes: x right, y down.
    c2w = look_at_c2w_opengl(torch.tensor([0.0, 0.0, 2.0]), torch.zeros(3), UP)
    camera = Camera(c2w, Intrinsics(fl_x=100.0, fl_y=100.0, cx=32.0, cy=24.0, width=64, height=48))
    whole_field = field_objects([], np.array([[-1.0] * 3, [1.0] * 3]))[0]  # model frame = world frame
    entry = bop_gt_entry(model_to_camera(whole_field, camera, mm_per_unit=500.0), whole_field.obj_id)
    R, t = np.array(entry["cam_R_m2c"]).reshape(3, 3), np.array(entry["cam_t_m2c"])
    np.testing.assert_allclose(R, np.diag([1.0, -1.0, -1.0]), atol=1e-7)
    np.testing.assert_allclose(t, [0.0, 0.0, 1000.0], atol=1e-4)  # 2 units of 0.5 m = 1000 mm
    K = np.array(bop_camera_entry(camera, 1.0)["cam_K"]).reshape(3, 3)
    point_mm = np.array([0.1, 0.2, 0.0]) * 500.0  # world (0.1, 0.2, 0) in millimetres: up and right
    u, v, w = K @ (R @ point_mm + t)
    # By hand: camera coordinates (50, -100, 1000) mm -> 5 pixels right and 10 up of the principal
    # point, which BOP's integer pixel centres put at (31.5, 23.5): nerfdata's (32, 24) less half a pixel.
    assert (u / w, v / w) == pytest.approx((36.5, 13.5))


def test_bop_files_agree_with_targets(targets_dir):
    document = json.loads((targets_dir / "inerf/targets.json").read_text())
    scene = targets_dir / "test/000001"
    scene_gt = json.loads((scene / "scene_gt.json").read_text())
    scene_camera = json.loads((scene / "scene_camera.json").read_text())
    for entry in document["targets"]:
        key = str(entry["id"])
        K = np.array(scene_camera[key]["cam_K"]).reshape(3, 3)
        half_pixel = 0.5 * np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]])  # BOP: integer pixel centres
        np.testing.assert_allclose(K, np.array(entry["K"]) - half_pixel, atol=1e-6)
        R = np.array(scene_gt[key][0]["cam_R_m2c"]).reshape(3, 3)
        t = np.array(scene_gt[key][0]["cam_t_m2c"])
        gt = np.array(entry["gt_c2w"])
        # A pixel's surface point from the BOP depth, back to the world with the targets' pose ...
        depth_mm = iio.imread(scene / f"depth/{int(key):06d}.png").astype(np.float64) * scene_camera[key]["depth_scale"]
        rows, cols = np.nonzero(depth_mm)
        r, c = rows[len(rows) // 2], cols[len(cols) // 2]
        z = depth_mm[r, c] / 1000.0  # scene units (metres here)
        ray_gl = np.array([(c - K[0, 2]) / K[0, 0], -(r - K[1, 2]) / K[1, 1], -1.0])  # (c, r): its centre
        world = gt[:3, :3] @ (ray_gl * z) + gt[:3, 3]
        # ... projects to the same pixel with BOP's model-to-camera (millimetres, OpenCV).
        cam = R @ (world * 1000.0) + t
        assert cam[2] > 0
        u, v = cam[0] / cam[2] * K[0, 0] + K[0, 2], cam[1] / cam[2] * K[1, 1] + K[1, 2]
        assert (u, v) == pytest.approx((c, r), abs=1e-3)
        assert iio.imread(targets_dir / entry["image"]).shape == (24, 32, 3)
    mesh = trimesh.load(targets_dir / "models/obj_000001.ply")
    info = json.loads((targets_dir / "models/models_info.json").read_text())["1"]
    extent_mm = np.ptp(np.asarray(mesh.vertices), axis=0)
    assert extent_mm.max() > 1000.0  # the demo scene spans metres: the model is in millimetres
    assert info["size_x"] == pytest.approx(extent_mm[0]) and info["diameter"] >= extent_mm.max()


def test_solve_job_writes_results(targets_dir, tmp_path):
    out = tmp_path / "results.json"
    solver = SolverConfig(iters=3, rays=64, num_steps=128)
    config = InerfSolveConfig(field=FIELD, targets=targets_dir, out=out, solver=solver, hypotheses=3)
    results = run_inerf_solve(config, show_progress=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    solved = [r["success"] for r in results["targets"]]
    assert results["success_rate"] == sum(solved) / len(solved) and results["criteria"]["rot_deg"] == 5.0
    _, targets = read_targets(targets_dir)
    for record, target in zip(results["targets"], targets, strict=True):
        assert set(record) >= {"id", "est_c2w", "rot_err_deg", "trans_err", "iters", "seconds"}
        assert len(record["start_c2w"]) == 3 and record["start_c2w"][0] == target.init_c2w.tolist()
        validate_c2w(torch.tensor(record["est_c2w"]))
    starts = hypothesis_starts(config, targets[0], depth=2.0)
    assert torch.equal(starts, hypothesis_starts(config, targets[0], depth=2.0))
    stored = targets[0].init_c2w
    pivot = stored[:3, 3] - 2.0 * stored[:3, 2]  # 2 units ahead of the stored start
    # The extra starts orbit it by hypothesis_rot_deg, about axes across the optical axis, evenly
    # spread (two: opposite), and still look at it.
    double = dict(dtype=torch.float64)
    assert torch.allclose((starts[:, :3, 3] - pivot).norm(dim=-1), torch.full((3,), 2.0, **double))
    angles = pose_errors(starts[1:], stored.expand(2, 4, 4))[0]
    assert torch.allclose(angles, torch.full((2,), config.hypothesis_rot_deg, **double))
    ahead = starts[1:] @ torch.tensor([0.0, 0.0, -2.0, 1.0], **double)
    assert torch.allclose(ahead[:, :3], pivot.expand(2, 3))
    moves = (starts[1:, :3, 3] - stored[:3, 3]) @ stored[:3, :3]  # in the stored camera's axes
    sideways = torch.nn.functional.normalize(moves[:, :2], dim=-1)
    assert float(sideways[0] @ sideways[1]) == pytest.approx(-1.0)
    assert describe_results(results)[0].startswith("success rate ")
    # analytic_demo records no meters_per_unit: its units were only taken as metres, so none are stated.
    assert results["criteria"]["trans_m"] is None and " m)" not in describe_results(results)[0]


def test_success_threshold_is_in_metres_only_when_the_targets_record_the_units(targets_dir, tmp_path):
    document = json.loads((targets_dir / "inerf/targets.json").read_text())
    assert document["meters_per_unit_source"].startswith("assumed")
    recorded = tmp_path / "recorded"
    shutil.copytree(targets_dir, recorded)
    document.update(meters_per_unit=0.5, meters_per_unit_source="checkpoint")
    (recorded / "inerf/targets.json").write_text(json.dumps(document))
    config = InerfSolveConfig(
        field=FIELD, targets=recorded, solver=SolverConfig(iters=1, rays=16, num_steps=64), limit=1
    )
    results = run_inerf_solve(config, show_progress=False)
    assert results["criteria"]["trans_m"] == pytest.approx(0.025)
    assert describe_results(results)[0].endswith("< 0.05 scene units (0.025 m)")


def test_solver_reports_every_step(targets_dir):
    _, targets = read_targets(targets_dir)
    target = targets[0]
    image = iio.imread(target.image)[..., :3].astype(np.float32) / 255.0
    loaded = load_field(FIELD)
    steps = []
    config = SolverConfig(iters=4, rays=32, num_steps=64, converge_window=0)
    solve_pose(
        loaded.field,
        loaded.occupancy_grid(),
        image,
        target.intrinsics,
        target.init_c2w[None],
        config,
        on_step=lambda done, loss: steps.append((done, loss)),
    )
    assert [done for done, _ in steps] == [1, 2, 3, 4] and all(math.isfinite(loss) for _, loss in steps)


# ------------------------------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors(targets_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(targets_dir, broken)
    document = json.loads((broken / "inerf/targets.json").read_text())
    (broken / document["targets"][1]["image"]).unlink()
    with pytest.raises(NerfDataError, match=r"target 1: image .* is missing"):
        read_targets(broken)
    scaled = json.loads(json.dumps(document))
    scaled["targets"][0]["gt_c2w"][0][0] *= 2.0
    (broken / "inerf/targets.json").write_text(json.dumps(scaled))
    with pytest.raises(PoseError, match="target 0 gt_c2w: rotation is not orthonormal"):
        read_targets(broken)
    with pytest.raises(NerfDataError, match="no inerf targets"):
        read_targets(tmp_path / "nowhere")
    with pytest.raises(NerfDataError, match="not empty"):
        run_inerf_targets(targets_config(targets_dir), show_progress=False)
    with pytest.raises(ConfigError, match="rot_deg must be"):
        targets_config(tmp_path / "x", rot_deg=-5.0)
    with pytest.raises(ConfigError, match="custom"):
        targets_config(tmp_path / "x", preset="custom", rot_deg=5.0)
    with pytest.raises(ConfigError, match="iters must be"):
        SolverConfig(iters=0)
    with pytest.raises(ConfigError, match="hypotheses"):
        InerfSolveConfig(field=FIELD, targets=targets_dir, hypotheses=0)


# ------------------------------------------------------------------------------------- benchmark


def test_benchmark_rows_and_target_recipes(tmp_path):
    from nerfdata.bench.inerf import bench_targets_config, inerf_benchmark, inerf_table

    room = bench_targets_config(Path("scenes/room"), tmp_path / "room", num=3, seed=1, preset="inerf")
    assert room.views and room.views[0].perturb is not None  # from configs/inerf/room.yaml
    assert room.num == 3 and not room.mesh
    demo = bench_targets_config(FIELD, tmp_path / "demo", num=3, seed=1, preset="pinerf")
    assert demo.views == () and demo.preset == "pinerf"  # the default shell
    rows = inerf_benchmark(FIELD, num=2, samplings=("random",), hypotheses=(1, 2), iters=4, rays=64, num_steps=64)
    assert [(r["sampling"], r["hypotheses"], r["targets"]) for r in rows] == [("random", 1, 2), ("random", 2, 2)]
    assert all(r["success_rate"] * r["targets"] == round(r["success_rate"] * r["targets"]) for r in rows)
    assert all(r["median_steps"] <= 4 for r in rows)  # iters=4 caps every solve
    assert inerf_table(rows).row_count == len(rows) + 2  # and the published figures


@pytest.mark.cuda
def test_one_solver_step_on_cuda_matches_the_cpu():
    field, occupancy, intrinsics, gt, target = _solver_case()
    start = _rotated(gt, 5.0, (0.3, 0.8, -0.5), (0.03, -0.02, 0.02))[None]
    config = SolverConfig(iters=1, rays=256, num_steps=256, converge_window=0)
    cpu = solve_pose(field, occupancy, target, intrinsics, start, config, torch.Generator().manual_seed(0))
    on_cuda = copy.deepcopy(field).to("cuda")
    gpu = solve_pose(on_cuda, occupancy.to("cuda"), target, intrinsics, start, config, torch.Generator().manual_seed(0))
    assert gpu.est_c2w.device.type == "cpu"  # the poses stay on the CPU, the rays and renders on the field's device
    validate_c2w(gpu.est_c2w)
    torch.testing.assert_close(gpu.losses, cpu.losses, rtol=2e-2, atol=1e-5)
    # One Adam step moves each coordinate by about lr: the two poses are that close, or closer.
    assert (gpu.est_c2w - cpu.est_c2w).abs().max() < 8 * config.lr
