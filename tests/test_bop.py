"""BOP scenes, models and results: read back as the BOP format documents specify, with readers written
here from those documents (docs/bop_datasets_format.md of bop_toolkit; the BOP19 results format)."""

import json
import math
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.config import from_dict
from nerfdata.errors import ConfigError, NerfDataError
from nerfdata.fields.analytic import AnalyticField, Box
from nerfdata.fields.loading import load_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.jobs.bop import BopConfig, BopExport
from nerfdata.jobs.inerf import InerfSolveConfig, InerfTargetsConfig, run_inerf_solve, run_inerf_targets
from nerfdata.jobs.render import CameraConfig, RenderJobConfig, run_render
from nerfdata.labels.inerf import SolverConfig
from nerfdata.labels.mesh import MeshConfig
from nerfdata.labels.objects import ObjectConfig
from nerfdata.poses import OrbitConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions, render_image
from nerfdata.writers.images import to_uint8

FIELD = Path("scenes/analytic_demo")
UP = torch.tensor([0.0, 1.0, 0.0])
# The analytic demo's sphere and its box standing on the ground slab (top at y = -0.5), as oriented
# boxes (world frame) from 0.01 above the ground; the second turned 30 degrees about the vertical.
DEMO_OBJECTS = (
    ObjectConfig(7, (-0.355, -0.135, 0.1), (0.73, 0.71, 0.74), name="sphere"),
    ObjectConfig(3, (0.45, -0.185, -0.3), (0.58, 0.61, 0.58), (0.0, 30.0, 0.0), name="box"),
)
GT_INFO_KEYS = {"bbox_obj", "bbox_visib", "px_count_all", "px_count_valid", "px_count_visib", "visib_fract"}


def read_bop_scene(scene: Path) -> dict:
    """A BOP scene read as docs/bop_datasets_format.md specifies it, checking names, keys and types."""
    documents = {
        name: json.loads((scene / f"{name}.json").read_text())
        for name in ("scene_camera", "scene_gt", "scene_gt_info")
    }
    assert (
        documents["scene_camera"].keys() == documents["scene_gt"].keys() == documents["scene_gt_info"].keys()
    )
    images = {}
    for key, camera in documents["scene_camera"].items():
        im_id = int(key)
        assert key == str(im_id) and set(camera) == {"cam_K", "depth_scale"} and len(camera["cam_K"]) == 9
        rgb = iio.imread(scene / "rgb" / f"{im_id:06d}.png")
        depth = iio.imread(scene / "depth" / f"{im_id:06d}.png")
        assert (
            rgb.dtype == np.uint8
            and rgb.ndim == 3
            and depth.dtype == np.uint16
            and depth.shape == rgb.shape[:2]
        )
        gts, infos = documents["scene_gt"][key], documents["scene_gt_info"][key]
        assert len(gts) == len(infos)
        instances = []
        for gt_id, (gt, info) in enumerate(zip(gts, infos, strict=True)):
            assert set(gt) == {"cam_R_m2c", "cam_t_m2c", "obj_id"} and set(info) == GT_INFO_KEYS
            assert isinstance(gt["obj_id"], int) and len(gt["cam_R_m2c"]) == 9 and len(gt["cam_t_m2c"]) == 3
            masks = {}
            for folder in ("mask", "mask_visib"):
                mask = iio.imread(scene / folder / f"{im_id:06d}_{gt_id:06d}.png")
                assert (
                    mask.dtype == np.uint8 and mask.shape == depth.shape and set(np.unique(mask)) <= {0, 255}
                )
                masks[folder] = mask == 255
            mask, visib = masks["mask"], masks["mask_visib"]
            assert not (visib & ~mask).any()  # the visible part lies inside the silhouette
            assert (
                info["px_count_visib"] == visib.sum() and info["px_count_valid"] == (mask & (depth > 0)).sum()
            )
            assert info["px_count_all"] >= mask.sum()  # and the truncated part beyond the image
            assert info["visib_fract"] == (
                info["px_count_visib"] / info["px_count_all"] if info["px_count_all"] else 0.0
            )
            assert all(isinstance(v, int) for v in info["bbox_obj"] + info["bbox_visib"])
            if visib.any():
                ys, xs = np.nonzero(visib)
                assert info["bbox_visib"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
            instances.append({**gt, **info, "mask": mask, "mask_visib": visib})
        K = np.array(camera["cam_K"]).reshape(3, 3)
        images[im_id] = {
            "K": K,
            "depth_mm": depth * camera["depth_scale"],
            "rgb": rgb,
            "instances": instances,
        }
    return images


def read_models_info(models: Path) -> dict[int, dict]:
    info = json.loads((models / "models_info.json").read_text())
    for key, entry in info.items():
        assert (models / f"obj_{int(key):06d}.ply").is_file()
        assert set(entry) >= {"diameter", "min_x", "min_y", "min_z", "size_x", "size_y", "size_z"}
    return {int(k): v for k, v in info.items()}


def m2c_of(instance: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.array(instance["cam_R_m2c"]).reshape(3, 3), np.array(instance["cam_t_m2c"])


# ------------------------------------------------------------------------------------- scenes


@pytest.fixture(scope="module")
def one_object(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bop") / "targets"
    config = InerfTargetsConfig(field=FIELD, out=out, num=2, seed=3, width=64, height=48, mesh_resolution=48)
    run_inerf_targets(config, show_progress=False)
    return out


@pytest.fixture(scope="module")
def several_objects(tmp_path_factory) -> Path:
    orbit = SamplerConfig(orbit=OrbitConfig(count=3, radius=2.6, elevation_deg=20.0, target=(0.0, -0.2, 0.0)))
    config = RenderJobConfig(
        field=FIELD,
        out=tmp_path_factory.mktemp("bop") / "render",
        views=(orbit,),
        camera=CameraConfig(width=48, height=40),
        outputs=("rgb", "depth"),
        render=RenderOptions(num_steps=512),
        preview_views=0,
        formats=("bop",),
        objects=DEMO_OBJECTS,
        bop=BopConfig(mesh=MeshConfig(resolution=64)),
    )
    return run_render(config, show_progress=False)


def test_one_object_scene_reads_as_the_format_says(one_object):
    images = read_bop_scene(one_object / "test/000001")
    assert sorted(images) == [0, 1]
    info = read_models_info(one_object / "models")
    assert list(info) == [1] and read_models_info(one_object / "models_eval").keys() == info.keys()
    for image in images.values():
        (whole,) = image["instances"]
        assert whole["obj_id"] == 1 and whole["visib_fract"] > 0.5
        # The whole field: the world frame in millimetres, so R is the world-to-camera rotation.
        R, _ = m2c_of(whole)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
    targets = json.loads((one_object / "inerf/targets.json").read_text())
    assert targets["bop"]["objects"][0]["obj_id"] == 1 and "bop_cam_K" in targets["conventions"]


def test_several_objects_scene_reads_as_the_format_says(several_objects):
    images = read_bop_scene(several_objects / "train_pbr/000000")
    assert sorted(images) == [0, 1, 2]
    info = read_models_info(several_objects / "models")
    assert sorted(info) == [3, 7]
    # The sphere: radius 0.35, in millimetres (the mesh grid has cells of 40 mm).
    assert info[7]["diameter"] == pytest.approx(700.0, rel=0.08)
    manifest = json.loads((several_objects / "manifest.json").read_text())
    assert manifest["complete"] and [o["obj_id"] for o in manifest["bop"]["objects"]] == [7, 3]
    for im_id, image in images.items():
        assert [i["obj_id"] for i in image["instances"]] == [7, 3]  # the objects' order, in every image
        record = manifest["views"][im_id]["files"]
        assert (
            record["bop_mask_visib_000001"]["path"] == f"train_pbr/000000/mask_visib/{im_id:06d}_000001.png"
        )
        for instance in image["instances"]:
            assert 0.0 < instance["visib_fract"] <= 1.0
        # The objects do not overlap: their visible parts do not either.
        sphere, box = image["instances"]
        assert not (sphere["mask_visib"] & box["mask_visib"]).any()
    # The sphere model is centred in its frame, in millimetres: its box is 700 mm wide around 0.
    assert info[7]["min_x"] == pytest.approx(-350.0, abs=15.0) and info[7]["size_y"] == pytest.approx(
        700.0, abs=30.0
    )


def test_render_job_without_bop_keeps_its_files_and_resumes_with_bop(several_objects, tmp_path):
    config = from_dict(RenderJobConfig, json.loads((several_objects / "manifest.json").read_text())["config"])
    plain = run_render(
        replace(config, out=tmp_path / "plain", formats=(), objects=(), bop=BopConfig()), show_progress=False
    )
    bop_files = {str(p.relative_to(several_objects)) for p in several_objects.rglob("*") if p.is_file()}
    plain_files = {str(p.relative_to(plain)) for p in plain.rglob("*") if p.is_file()}
    assert plain_files < bop_files
    for name in plain_files - {"manifest.json"}:  # the nerfstudio files are the same with and without bop
        assert (plain / name).read_bytes() == (several_objects / name).read_bytes(), name
    assert not {"formats", "objects", "bop"} & set(
        json.loads((plain / "manifest.json").read_text())["config"]
    )
    # A damaged BOP file is found on resume and its view written again, to the same bytes.
    again = tmp_path / "again"
    import shutil

    shutil.copytree(several_objects, again)
    damaged = again / "train_pbr/000000/mask/000001_000000.png"
    original = damaged.read_bytes()
    damaged.write_bytes(b"not a png")
    (again / "train_pbr/000000/scene_gt_info.json").unlink()
    run_render(replace(config, out=again), show_progress=False)
    assert damaged.read_bytes() == original
    assert (again / "train_pbr/000000/scene_gt_info.json").read_bytes() == (
        several_objects / "train_pbr/000000/scene_gt_info.json"
    ).read_bytes()


# ------------------------------------------------------------------------------------- hand-built occlusion


def test_an_occluded_object_matches_a_hand_built_case(tmp_path):
    # A plate facing the camera 4 units away and a slab 3 units away covering its right half. The focal
    # length puts the plate's edges, 0.5 units from the axis, exactly 16 pixels from the image centre.
    plate = Box((0.0, 0.0, 0.0), (0.5, 0.5, 0.05))
    slab = Box((0.3, 0.0, 1.0), (0.3, 0.7, 0.05))
    field = AnalyticField([plate, slab], aabb=[[-0.8, -0.8, -0.2], [0.8, 0.8, 1.2]])
    occupancy = occupancy_grid_from_density(field.density, field.aabb, 64)
    focal = 16.0 * 3.95 / 0.5  # the plate's front face is 3.95 units from the camera
    camera = Camera(
        look_at_c2w_opengl(torch.tensor([0.0, 0.0, 4.0]), torch.zeros(3), UP),
        Intrinsics(focal, focal, 32.0, 32.0, 64, 64),
    )
    objects = (
        ObjectConfig(1, (0.0, 0.0, 0.0), (1.1, 1.1, 0.2), name="plate"),
        ObjectConfig(2, (0.3, 0.0, 1.0), (0.7, 1.5, 0.2)),
    )
    export = BopExport.create(
        tmp_path, "test/000001", field, occupancy, objects, MeshConfig(resolution=160), 1.0
    )
    image = render_image(field, camera, RenderOptions(num_steps=1024, normals=False), occupancy)
    _, entry = export.write_view(
        0, camera, to_uint8(image.rgb.numpy()), image.depth_median.numpy(), image.range_median.numpy()
    )
    export.write_scene({0: entry})
    plate_info, slab_info = read_bop_scene(tmp_path / "test/000001")[0]["instances"]
    # By hand: the plate covers columns and rows 16..47 (32 x 32 pixels); the slab's left edge (x = 0)
    # projects to u = 32, a pixel boundary, so columns 32..47 of the plate are hidden: 16 x 32 visible.
    # The mesh's edges may move a silhouette edge by a pixel row or column.
    assert plate_info["px_count_all"] == pytest.approx(1024, abs=2 * 33)
    assert plate_info["px_count_visib"] == pytest.approx(512, abs=2 * 33)
    assert plate_info["visib_fract"] == pytest.approx(0.5, abs=0.04)
    np.testing.assert_allclose(plate_info["bbox_obj"], [16, 16, 31, 31], atol=1)
    np.testing.assert_allclose(plate_info["bbox_visib"], [16, 16, 15, 31], atol=1)
    assert not plate_info["mask_visib"][:, 33:].any() and plate_info["mask_visib"][17:47, 17:31].all()
    assert plate_info["mask"][17:47, 17:47].all()  # amodal: the hidden half is in the mask
    assert slab_info["visib_fract"] > 0.97  # nothing hides the slab


def test_a_truncated_silhouette_counts_its_pixels_beyond_the_image():
    import trimesh

    from nerfdata.labels.objects import silhouette
    from nerfdata.scenes.groundtruth import MeshRaycaster

    # A sphere of radius 100 mm, 1000 mm ahead on the optical axis of a camera whose principal point
    # is at the image's left edge: half of its disk (radius f * 100 / sqrt(1000^2 - 100^2)) is outside.
    model = trimesh.creation.icosphere(subdivisions=5, radius=100.0)
    m2c = np.eye(4)
    m2c[2, 3] = 1000.0
    intrinsics = Intrinsics(200.0, 200.0, 0.0, 32.0, 64, 64)
    outline = silhouette(MeshRaycaster.from_meshes([model]), model, m2c, intrinsics)
    radius_px = 200.0 * 100.0 / math.sqrt(1000.0**2 - 100.0**2)
    assert len(outline.pixels) == pytest.approx(math.pi * radius_px**2, rel=0.03)
    assert outline.mask.sum() == pytest.approx(len(outline.pixels) / 2, rel=0.05)
    assert outline.pixels[:, 0].min() == pytest.approx(-radius_px, abs=1.0)  # beyond the left edge


# ------------------------------------------------------------------------------------- half a pixel


def test_cam_k_has_integer_pixel_centres_and_depth_back_projects_onto_the_surface(one_object):
    field = load_field(FIELD).field
    targets = json.loads((one_object / "inerf/targets.json").read_text())["targets"]
    images = read_bop_scene(one_object / "test/000001")
    for target in targets:
        image = images[target["id"]]
        K, (whole,) = image["K"], image["instances"]
        R, t = m2c_of(whole)
        gt = torch.tensor(target["gt_c2w"], dtype=torch.float32)
        camera = Camera(
            gt,
            Intrinsics(*(target["K"][0][0], target["K"][1][1], target["K"][0][2], target["K"][1][2]), 64, 48),
        )
        # A pixel's exact surface point (the ray through its centre), projected with the written
        # cam_K and pose as s [u, v, 1] = K (R x + t), lands on that pixel's integer coordinates.
        rays = camera.rays()
        hits = field.trace(rays.origins, rays.directions)
        for pixel in np.flatnonzero(hits.hit.numpy())[::97]:
            row, col = divmod(int(pixel), 64)
            point_mm = (
                1000.0
                * (
                    rays.origins[pixel].double()
                    + hits.range[pixel].double() * rays.directions[pixel].double()
                ).numpy()
            )
            u, v, s = K @ (R @ point_mm + t)
            assert (u / s, v / s) == pytest.approx((col, row), abs=2e-3)
        # Written depth, back-projected with cam_K at pixel (col, row), lies on the surface.
        rows, cols = np.nonzero(image["depth_mm"])
        camera_mm = (
            image["depth_mm"][rows, cols, None]
            * (np.linalg.inv(K) @ np.stack([cols, rows, np.ones_like(cols)]).astype(np.float64)).T
        )
        world = ((camera_mm - t) @ R) / 1000.0
        distance = field.sdf(torch.from_numpy(world).float()).abs().numpy()
        # Half a pixel off (the +0.5 centres in cam_K) puts them 6e-3 of the extent away.
        assert np.median(distance) < 5e-4 * field.extent and np.quantile(distance, 0.9) < 1e-3 * field.extent


# ------------------------------------------------------------------------------------- results


def read_bop19_results(path: Path) -> list[dict]:
    """A BOP19 results CSV as its format is published: header, then scene_id,im_id,obj_id,score,R,t,time with
    R (row-major) and t (mm) as space-separated numbers."""
    lines = path.read_text().splitlines()
    assert lines[0] == "scene_id,im_id,obj_id,score,R,t,time"
    rows = []
    for line in lines[1:]:
        scene_id, im_id, obj_id, score, R, t, seconds = line.split(",")
        rows.append(
            {
                "scene_id": int(scene_id),
                "im_id": int(im_id),
                "obj_id": int(obj_id),
                "score": float(score),
                "R": np.array([float(v) for v in R.split(" ")]).reshape(3, 3),
                "t": np.array([float(v) for v in t.split(" ")]),
                "time": float(seconds),
            }
        )
    return rows


def bop_re_te(R_est, t_est, R_gt, t_gt) -> tuple[float, float]:
    """BOP's errors as the benchmark defines them: the angle of R_est R_gt^-1 (degrees), ||t_est - t_gt||."""
    cosine = min(1.0, max(-1.0, 0.5 * (np.trace(R_est @ np.linalg.inv(R_gt)) - 1.0)))
    return math.degrees(math.acos(cosine)), float(np.linalg.norm(t_est - t_gt))


@pytest.mark.parametrize("objects", [(), DEMO_OBJECTS], ids=["whole field", "two objects"])
def test_results_csv_round_trips_and_its_errors_are_the_solvers(tmp_path, objects):
    targets = tmp_path / "targets"
    config = InerfTargetsConfig(
        field=FIELD, out=targets, num=2, seed=5, width=32, height=24, mesh_resolution=32, objects=objects
    )
    run_inerf_targets(config, show_progress=False)
    solve = InerfSolveConfig(
        field=FIELD, targets=targets, solver=SolverConfig(iters=3, rays=64, num_steps=128)
    )
    results = run_inerf_solve(solve, show_progress=False)
    assert results["bop_results"] == "inerf_nerfdata-test.csv"
    rows = read_bop19_results(targets / "inerf" / results["bop_results"])
    scene_gt = json.loads((targets / "test/000001/scene_gt.json").read_text())
    ids = [o.id for o in objects] or [1]
    assert [(r["scene_id"], r["im_id"], r["obj_id"]) for r in rows] == [
        (1, i, o) for i in (0, 1) for o in ids
    ]
    for row in rows:
        record = results["targets"][row["im_id"]]
        reported = next(b for b in record["bop"] if b["obj_id"] == row["obj_id"])
        gt = next(g for g in scene_gt[str(row["im_id"])] if g["obj_id"] == row["obj_id"])
        re, te = bop_re_te(
            row["R"], row["t"], np.array(gt["cam_R_m2c"]).reshape(3, 3), np.array(gt["cam_t_m2c"])
        )
        assert (re, te) == (reported["re_deg"], reported["te_mm"])  # the very numbers, from the two files
        assert row["time"] == record["seconds"] and 0.0 < row["score"] <= 1.0
        # re is the camera's rotation error (all objects move with it); te is not the centre distance.
        assert re == pytest.approx(record["rot_err_deg"], abs=1e-3)
        # The estimate is the estimated camera's view of the object: w2c_est @ gt_c2w @ gt_m2c.
        flip = np.diag([1.0, -1.0, -1.0, 1.0])
        gt_c2w, est_c2w = (
            np.array(record_c2w) @ flip
            for record_c2w in (record_gt(targets, row["im_id"]), record["est_c2w"])
        )
        gt_c2w[:3, 3] *= 1000.0
        est_c2w[:3, 3] *= 1000.0
        gt_m2c = np.eye(4)
        gt_m2c[:3, :3], gt_m2c[:3, 3] = np.array(gt["cam_R_m2c"]).reshape(3, 3), gt["cam_t_m2c"]
        est_w2c = np.eye(4)  # the rigid inverse (R^T), as for any camera pose
        est_w2c[:3, :3], est_w2c[:3, 3] = est_c2w[:3, :3].T, -est_c2w[:3, :3].T @ est_c2w[:3, 3]
        expected = est_w2c @ gt_c2w @ gt_m2c
        np.testing.assert_allclose(row["R"], expected[:3, :3], atol=1e-9)
        np.testing.assert_allclose(row["t"], expected[:3, 3], atol=1e-6)


def record_gt(targets: Path, im_id: int) -> list:
    return json.loads((targets / "inerf/targets.json").read_text())["targets"][im_id]["gt_c2w"]


def test_shipped_tabletop_boxes_hold_their_recipe_objects():
    from nerfdata.config import load_yaml
    from nerfdata.labels.objects import field_objects
    from nerfdata.scenes import load_recipe
    from nerfdata.scenes.meshes import object_mesh

    config = from_dict(RenderJobConfig, load_yaml("configs/bop/tabletop.yaml"))
    assert config.formats == ("bop",) and config.bop.scene == "train_pbr/000000"
    boxes = {obj.name: obj for obj in field_objects(config.objects, np.zeros((2, 3)))}
    recipe = {obj.name: obj for obj in load_recipe(Path("scenes/tabletop")).objects}
    assert sorted(boxes) == sorted(set(recipe) - {"table"})
    for name, box in boxes.items():
        assert box.model_to_world[:3, 2] == pytest.approx([0.0, 1.0, 0.0])  # the model's z is up
        for other, obj in recipe.items():
            vertices = object_mesh(obj)[0].vertices
            local = (vertices - box.model_to_world[:3, 3]) @ box.model_to_world[:3, :3]
            inside = np.all((local >= box.low) & (local <= box.high), axis=-1)
            if other == name:  # all of it but the bottom 0.015 the box leaves out above the table
                assert inside[vertices[:, 1] > 0.016].all(), name
            else:
                assert not inside.any(), (name, other)


# ------------------------------------------------------------------------------------- bad input


def test_bad_objects_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="id 2 is used by more than one object"):
        RenderJobConfig(
            field=FIELD, formats=("bop",), objects=(ObjectConfig(2, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),) * 2
        )
    with pytest.raises(ConfigError, match="only used with formats: \\[bop\\]"):
        RenderJobConfig(field=FIELD, objects=(ObjectConfig(2, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),))
    with pytest.raises(ConfigError, match="size must be positive"):
        from_dict(
            RenderJobConfig,
            {
                "field": "x",
                "formats": ["bop"],
                "objects": [{"id": 1, "center": [0, 0, 0], "size": [1, 0, 1]}],
            },
        )
    with pytest.raises(ConfigError, match="missing required key 'center'"):
        from_dict(
            RenderJobConfig, {"field": "x", "formats": ["bop"], "objects": [{"id": 1, "size": [1, 1, 1]}]}
        )
    with pytest.raises(ConfigError, match="keep mesh: true"):
        InerfTargetsConfig(field=FIELD, objects=DEMO_OBJECTS, mesh=False)
    with pytest.raises(ConfigError, match=r"bop\.split"):
        BopConfig(split="../x")
    empty = ObjectConfig(9, (0.0, 0.7, 0.0), (0.1, 0.1, 0.1), name="air")  # above everything
    config = InerfTargetsConfig(
        field=FIELD, out=tmp_path / "t", num=1, width=16, height=12, mesh_resolution=24, objects=(empty,)
    )
    with pytest.raises(
        NerfDataError, match="object 9 \\(air\\): the field's mesh has no surface inside its box"
    ):
        run_inerf_targets(config, show_progress=False)
