"""Ground-truth scenes: exact ray casting by hand, recipes, and the dataset writer's round trip."""

import json
import math

import numpy as np
import pytest
import torch

from nerfdata.cameras import Camera, Intrinsics, look_at_c2w_opengl
from nerfdata.errors import ConfigError
from nerfdata.scenes import load_recipe, rig_cameras, write_scene_dataset
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import LightConfig, MaterialConfig, ObjectConfig, RigConfig, SceneRecipe
from nerfdata.writers.transforms import read_transforms


def recipe(*objects: ObjectConfig, **rig) -> SceneRecipe:
    rig = {"train_views": 6, "test_views": 2, "width": 24, "height": 20, "radius": 3.0} | rig
    return SceneRecipe(name="test", objects=objects, rig=RigConfig(**rig))


def camera_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), size=(9, 7), fov=40.0) -> Camera:
    c2w = look_at_c2w_opengl(torch.tensor(eye), torch.tensor(target), torch.tensor(up))
    return Camera(c2w, Intrinsics.from_fov(size[0], size[1], fov))


def test_depth_of_a_plane_at_a_known_distance():
    solid = MaterialConfig(pattern="solid")
    slab = ObjectConfig("box", extents=(4.0, 0.2, 4.0), position=(0.0, -0.1, 0.0), material=solid)
    caster = MeshRaycaster(build_meshes(recipe(slab)))
    # Camera 2.5 above the top face (y = 0), looking straight down.
    image = caster.render(camera_at((0.1, 2.5, 0.2), (0.1, 0.0, 0.2), up=(0.0, 0.0, -1.0)), LightConfig())
    np.testing.assert_allclose(image.depth, 2.5, atol=1e-5)
    np.testing.assert_allclose(image.normal.reshape(-1, 3), np.tile([0.0, 1.0, 0.0], (63, 1)), atol=1e-6)
    assert (image.range >= image.depth - 1e-6).all() and image.mask.all()


def test_normals_of_a_sphere_point_outwards():
    ball = ObjectConfig("sphere", radius=0.7, position=(0.2, 0.1, -0.3))
    caster = MeshRaycaster(build_meshes(recipe(ball)))
    camera = camera_at((1.5, 1.0, 2.5), (0.2, 0.1, -0.3), size=(40, 40))
    rays = camera.rays()
    hits = caster.cast_rays(rays)
    points = rays.origins.numpy() + hits.range[:, None] * rays.directions.numpy()
    radial = (points - np.array([0.2, 0.1, -0.3]))[hits.hit]
    np.testing.assert_allclose(np.linalg.norm(radial, axis=-1), 0.7, atol=2e-3)  # tessellated sphere
    cosine = np.sum(hits.normal[hits.hit] * radial / np.linalg.norm(radial, axis=-1, keepdims=True), axis=-1)
    assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).max() < 2.0


def test_pixel_centre_convention_by_hand():
    # A box face x = 0 seen head-on: columns whose pixel centre is left of the edge see it.
    solid = MaterialConfig(pattern="solid")
    wall = ObjectConfig("box", extents=(4.0, 4.0, 0.2), position=(0.0, 0.0, -2.1), material=solid)
    edge = ObjectConfig("box", extents=(1.0, 4.0, 0.1), position=(-0.5, 0.0, -1.0), material=solid)
    caster = MeshRaycaster(build_meshes(recipe(wall, edge)))
    intrinsics = Intrinsics(fl_x=10.0, fl_y=10.0, cx=5.0, cy=4.0, width=10, height=8)
    image = caster.render(Camera(torch.eye(4), intrinsics), LightConfig())
    # The near box ends at x = 0 at depth 0.95: pixel u sees x = (u + 0.5 - 5) / 10 * 0.95 < 0 for u <= 4.
    near = np.isclose(image.depth, 0.95, atol=1e-5)
    assert near[:, :5].all() and not near[:, 5:].any()
    assert image.object_id[0, 0] == 2 and image.object_id[0, 9] == 1


def test_colours_are_interpolated_and_shaded():
    red = ObjectConfig("box", extents=(4.0, 0.2, 4.0), material=MaterialConfig(color=(1.0, 0.0, 0.0), pattern="solid"))
    caster = MeshRaycaster(build_meshes(recipe(red)))
    light = LightConfig(direction=(0.0, 1.0, 0.0), ambient=0.25)
    image = caster.render(camera_at((0.0, 3.0, 0.0), up=(0.0, 0.0, -1.0)), light, background=1.0)
    np.testing.assert_allclose(image.rgb.reshape(-1, 3), np.tile([1.0, 0.0, 0.0], (63, 1)), atol=1e-6)
    side = caster.render(camera_at((3.0, 0.0, 0.0)), light)
    lit = side.rgb[side.mask]
    np.testing.assert_allclose(lit, np.tile([0.25, 0.0, 0.0], (len(lit), 1)), atol=1e-6)  # ambient only
    assert (side.rgb[~side.mask] == 1.0).all()


def test_rig_cameras_look_at_the_target_from_the_patch():
    rig = RigConfig(radius=2.0, target=(0.5, 0.0, 0.0), elevation_deg=(10.0, 30.0), azimuth_deg=(0.0, 90.0))
    cameras = rig_cameras(rig, 50, torch.Generator().manual_seed(0))
    for camera in cameras:
        offset = camera.c2w_opengl[:3, 3] - torch.tensor([0.5, 0.0, 0.0])
        assert offset.norm().item() == pytest.approx(2.0, abs=1e-5)
        elevation = math.degrees(math.asin(offset[1].item() / 2.0))
        assert 10.0 - 1e-3 <= elevation <= 30.0 + 1e-3 and offset[0] >= -1e-6 and offset[2] >= -1e-6
        torch.testing.assert_close(camera.forward, -offset / offset.norm())


def test_dataset_round_trip(tmp_path):
    scene = recipe(
        ObjectConfig("sphere", radius=0.5, material=MaterialConfig(pattern="noise")),
        ObjectConfig("torus", radius=0.6, thickness=0.1, position=(0.0, -0.4, 0.0)),
    )
    out = write_scene_dataset(scene, tmp_path / "data")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["views"]) == 8
    dataset = read_transforms(out)
    assert len(dataset.split("train")) == 6 and len(dataset.split("test")) == 2
    cameras = rig_cameras(scene.rig, 6, torch.Generator().manual_seed(scene.seed))
    for frame, camera in zip(dataset.split("train"), cameras, strict=True):
        torch.testing.assert_close(frame.camera.c2w_opengl, camera.c2w_opengl)
        assert frame.camera.intrinsics == camera.intrinsics
    assert dataset.aabb is not None and (dataset.aabb[0] < -0.5).all()
    depth = np.load(out / "depth/00000.npy")
    assert depth.max() > 0 and (out / "mesh.ply").stat().st_size > 1000
    import trimesh

    mesh = trimesh.load(out / "mesh.ply")
    assert len(mesh.vertices) == manifest["mesh"]["vertices"] and mesh.visual.vertex_colors.shape[1] == 4


@pytest.mark.parametrize("name", ["mug", "tabletop", "room"])
def test_shipped_recipes_build_watertight_meshes(name):
    scene = build_meshes(load_recipe(f"scenes/{name}"))
    assert all(mesh.is_watertight and mesh.volume > 0 for mesh in scene.meshes)


def test_recipe_errors(tmp_path):
    with pytest.raises(ConfigError, match="wall thickness"):
        ObjectConfig("cup", radius=0.1, thickness=0.2)
    path = tmp_path / "scene.yaml"
    path.write_text("name: x\nobjects: [{shape: pyramid}]\n")
    with pytest.raises(ConfigError, match="shape: 'pyramid' is not one of"):
        load_recipe(tmp_path)
