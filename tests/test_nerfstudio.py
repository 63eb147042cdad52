"""nerfstudio checkpoints as fields: the shipped nerfacto run of the mug scene, frames, parity, bad input."""

import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip(
    "nerfstudio",
    reason="needs the [nerfstudio] extra (own venv with CUDA-build torch); .ci/run runs these in .venv-ci-ns",
)

from nerfdata.cameras import Camera
from nerfdata.errors import CheckpointError
from nerfdata.fields.loading import load_field
from nerfdata.fields.nerfstudio import NerfstudioField, load_nerfstudio_field, render_rays_nerfstudio
from nerfdata.scenes.dataset import scene_cameras
from nerfdata.scenes.groundtruth import MeshRaycaster
from nerfdata.scenes.meshes import build_meshes
from nerfdata.scenes.recipe import load_recipe

RUN = Path(__file__).resolve().parents[1] / "scenes" / "mug" / "nerfacto"
CONFIG = RUN / "config.yml"


@pytest.fixture(scope="module")
def loaded():
    return load_field(CONFIG)


@pytest.fixture(scope="module")
def baseline() -> NerfstudioField:
    """The shipped run on nerfstudio's own modules (its PyTorch hash grids), as ns-render runs it."""
    return load_nerfstudio_field(CONFIG, nerfdata_kernels=False).field


@pytest.fixture(scope="module")
def test_camera() -> Camera:
    """The mug scene's first test view at half resolution (64 x 64)."""
    camera = scene_cameras(load_recipe(RUN.parent))["test"][0]
    return Camera(camera.c2w_opengl, camera.intrinsics.scaled(0.5))


def nerfstudio_camera(field: NerfstudioField, camera: Camera):
    """The same camera as nerfstudio sees it: pose mapped by the dataparser transform."""
    from nerfstudio.cameras.cameras import Cameras

    k = camera.intrinsics
    return Cameras(
        camera_to_worlds=field.frame.c2w_to_nerfstudio(camera.c2w_opengl)[None],
        fx=k.fl_x, fy=k.fl_y, cx=k.cx, cy=k.cy, width=k.width, height=k.height,
    )


def test_the_shipped_run_loads_as_a_field_in_the_data_frame(loaded):
    field = loaded.field
    assert isinstance(field, NerfstudioField) and field.field_type == "nerfstudio"
    assert loaded.metadata["method"] == "nerfacto" and loaded.metadata["source"] == "nerfstudio"
    assert len(loaded.sha256) == 64 and loaded.json_path == CONFIG
    assert not any(p.requires_grad for p in field.parameters())
    # The box is nerfstudio's scene box mapped back: it holds the mug (about 1 unit across) and the cameras (2.4 away).
    assert (field.aabb[0] < -2.0).all() and (field.aabb[1] > 2.0).all()
    assert loaded.metadata["dataparser_transform"]["scale"] == pytest.approx(field.frame.scale)


def test_point_queries_are_the_model_field_mapped_to_world_units(loaded):
    """density(x) = scale * sigma_ns(x_ns) and the same colour, for world points and directions."""
    from nerfstudio.cameras.rays import Frustums, RaySamples
    from nerfstudio.field_components.field_heads import FieldHeadNames

    field = loaded.field
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2000, 3, generator=generator) * 1.4 - 0.7
    d = torch.nn.functional.normalize(torch.randn(2000, 3, generator=generator), dim=-1)
    with torch.no_grad():
        sigma, rgb = field.query(x, d)
        frame = field.frame
        zeros = torch.zeros(2000, 1)
        frustums = Frustums(
            origins=(x @ frame.rotation.T + frame.translation) * frame.scale, directions=d @ frame.rotation.T,
            starts=zeros, ends=zeros, pixel_area=torch.ones_like(zeros),
        )
        samples = RaySamples(frustums=frustums, camera_indices=torch.zeros(2000, 1, dtype=torch.long))
        outputs = field.model.field(samples)
    torch.testing.assert_close(sigma, outputs[FieldHeadNames.DENSITY][:, 0] * frame.scale, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rgb, outputs[FieldHeadNames.RGB], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(field.density(x), sigma, rtol=0, atol=0)
    assert sigma.max() > 10.0  # the mug is there, and dense
    with torch.no_grad():  # query in two halves, as the renderer asks (it colours only what weighs in a pixel)
        density, features = field.geometry(x)
        colour = field.shade(features, d)
    torch.testing.assert_close(density, sigma, rtol=0, atol=0)
    torch.testing.assert_close(colour, rgb, rtol=1e-6, atol=1e-6)


def test_the_models_own_render_matches_nerfstudio_for_the_same_camera(loaded, test_camera):
    """nerfdata rays in the data frame, rendered by the model's proposal sampler, against get_outputs_for_camera.

    RGB agrees to 1e-3 everywhere. Depth and accumulation agree to 1e-3 on 99% of the surface
    pixels: the proposal sampler resamples from the previous stage's weights, so the 1e-7
    difference between nerfdata's rays and nerfstudio's own (float32 rounding) moves samples on
    silhouette pixels (measured: the same happens when nerfstudio's own rays are mapped to the data
    frame and back).
    """
    field = loaded.field
    rays = test_camera.rays()
    ours = render_rays_nerfstudio(field, rays)
    theirs = field.model.get_outputs_for_camera(nerfstudio_camera(field, test_camera))
    assert ours.rgb.shape == (len(rays), 3)
    assert (ours.rgb - theirs["rgb"].reshape(-1, 3)).abs().max() < 1e-3
    surface = (theirs["accumulation"].reshape(-1) > 0.5) & (ours.range_median < field.extent)
    assert surface.float().mean() > 0.1
    for name, key in (("depth_median", "depth"), ("depth_expected", "expected_depth")):
        their_depth = theirs[key].reshape(-1) / field.frame.scale * rays.z_per_range  # normalised range -> z-depth
        error = (getattr(ours, name) - their_depth).abs()[surface]
        assert (error < 1e-3).float().mean() > 0.99, name
        assert error.max() < 0.05, name
    assert ((ours.accumulation - theirs["accumulation"].reshape(-1)).abs() < 1e-3).float().mean() > 0.99


def test_depth_is_z_depth_in_the_scenes_units(loaded, test_camera):
    """Against the exact ray-cast depth of the scene the run was trained on (original frame, scene units)."""
    recipe = load_recipe(RUN.parent)
    truth = MeshRaycaster(build_meshes(recipe)).render(test_camera, recipe.light)
    ours = render_rays_nerfstudio(loaded.field, test_camera.rays())
    depth = ours.depth_median.reshape(truth.depth.shape).numpy()
    hit = truth.mask & (ours.accumulation.reshape(truth.depth.shape).numpy() > 0.5)
    assert hit.mean() > 0.1
    error = abs(depth[hit] - truth.depth[hit])
    assert float(sorted(error)[len(error) // 2]) < 0.05  # median error: 5 cm of a 2.4 m viewing distance


def test_dataparser_frame_matches_nerfstudios_own_dataparser(loaded, tmp_path):
    """nerfstudio's dataparser, run on the training cameras, gives the poses our frame gives."""
    import json

    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from PIL import Image

    meta = json.loads((RUN.parent / "cameras.json").read_text())
    # All 120 frames, as in training: nerfstudio centres and scales on every pose before splitting.
    for frame in meta["frames"]:
        frame["file_path"] = f"images/{Path(frame['file_path']).name}"
        for key in ("mask_path", "depth_file_path"):
            frame.pop(key, None)
    for key in ("train_filenames", "val_filenames", "test_filenames"):
        meta.pop(key, None)
    (tmp_path / "images").mkdir()
    for frame in meta["frames"]:
        Image.new("RGB", (frame["w"], frame["h"])).save(tmp_path / frame["file_path"])
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    parser = NerfstudioDataParserConfig(data=tmp_path, train_split_fraction=1.0).setup()
    outputs = parser.get_dataparser_outputs("train")
    frame = loaded.field.frame
    assert outputs.dataparser_scale == pytest.approx(frame.scale, rel=1e-6)
    world = torch.tensor([f["transform_matrix"] for f in meta["frames"]], dtype=torch.float32)
    torch.testing.assert_close(frame.c2w_to_nerfstudio(world), outputs.cameras.camera_to_worlds, rtol=0, atol=1e-5)
    centres = world[:, :3, 3]
    torch.testing.assert_close(frame.from_nerfstudio(frame.to_nerfstudio(centres)), centres, rtol=0, atol=1e-5)


def test_loads_from_anywhere_without_the_training_data(tmp_path, monkeypatch):
    """The checkpoint is found beside config.yml, whatever the current folder; no image is read."""
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(RUN, copy)
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "data").exists()
    loaded = load_field(copy / "config.yml")
    assert loaded.metadata["checkpoint"].startswith(str(copy))


def test_a_missing_checkpoint_folder_is_one_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    for name in ("config.yml", "dataparser_transforms.json"):
        shutil.copy(RUN / name, tmp_path / "run" / name)
    with pytest.raises(CheckpointError, match="checkpoint folder not found") as error:
        load_field(tmp_path / "run" / "config.yml")
    assert "\n" not in str(error.value)


def test_an_unsupported_method_is_one_clear_error(tmp_path):
    shutil.copytree(RUN, tmp_path / "run")
    config = tmp_path / "run" / "config.yml"
    text = config.read_text().replace(
        "nerfstudio.models.nerfacto.NerfactoModel", "nerfstudio.models.splatfacto.SplatfactoModel"
    )
    config.write_text(text.replace("method_name: nerfacto", "method_name: splatfacto"))
    with pytest.raises(CheckpointError, match=r"method 'splatfacto' .* is not supported") as error:
        load_field(config)
    assert "\n" not in str(error.value)


def test_a_config_that_would_run_code_is_refused(tmp_path):
    shutil.copytree(RUN, tmp_path / "run")
    config = tmp_path / "run" / "config.yml"
    config.write_text("!!python/object/apply:os.system ['echo pwned > " + str(tmp_path / "pwned") + "']\n")
    with pytest.raises(CheckpointError, match="not a readable nerfstudio config"):
        load_field(config)
    assert not (tmp_path / "pwned").exists()


def test_a_missing_dataparser_transform_is_refused(tmp_path):
    shutil.copytree(RUN, tmp_path / "run")
    (tmp_path / "run" / "dataparser_transforms.json").unlink()
    with pytest.raises(CheckpointError, match=r"dataparser_transforms\.json: not found"):
        load_field(tmp_path / "run" / "config.yml")


def test_a_checkpoint_with_a_misshapen_tensor_is_refused(tmp_path):
    shutil.copytree(RUN, tmp_path / "run")
    (checkpoint,) = (tmp_path / "run" / "nerfstudio_models").glob("step-*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["pipeline"]["_model.field.mlp_head.layers.0.weight"] = torch.zeros(3, 3)
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match=(
        r"step-\d+\.ckpt: tensor 'field\.mlp_head\.layers\.0\.weight' has shape \(3, 3\), the model in config\.yml"
    )):
        load_field(tmp_path / "run" / "config.yml")


def test_a_checkpoint_missing_a_tensor_is_refused(tmp_path):
    shutil.copytree(RUN, tmp_path / "run")
    (checkpoint,) = (tmp_path / "run" / "nerfstudio_models").glob("step-*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    del state["pipeline"]["_model.field.mlp_head.layers.0.weight"]
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match=r"step-\d+\.ckpt: does not match the model in config.yml: "
                                              r"missing tensors \['field.mlp_head.layers.0.weight'\]") as error:
        load_field(tmp_path / "run" / "config.yml")
    assert "\n" not in str(error.value)


def test_a_nerfstudio_field_is_not_saved_as_a_nerfdata_checkpoint(loaded, tmp_path):
    """save_field refuses it in one line (it could not be loaded back), and writes nothing."""
    from nerfdata.fields.checkpoint import save_field

    with pytest.raises(CheckpointError, match=r"cannot save a NerfstudioField \(field type 'nerfstudio'\)") as error:
        save_field(loaded.field, tmp_path / "ckpt")
    assert "\n" not in str(error.value) and not (tmp_path / "ckpt").exists()


def tcnn_checkpoint(run: Path, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Swap the shipped run's PyTorch hash grids and MLPs for random tiny-cuda-nn vectors, as a GPU run stores them."""
    from nerfdata.fields.nerfstudio.tcnn import hash_grid_config_of
    from nerfdata.fields.tcnn_convert import tcnn_mlp_num_params

    (checkpoint,) = (run / "nerfstudio_models").glob("step-*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    pipeline = state["pipeline"]
    model = load_nerfstudio_field(run / "config.yml", nerfdata_kernels=False).field.model  # nerfstudio's modules
    vectors = {}

    def grid_size(encoding) -> int:
        return hash_grid_config_of(encoding).num_params

    def mlp_size(mlp) -> int:
        return tcnn_mlp_num_params(mlp.in_dim, mlp.layer_width, mlp.num_layers - 1, mlp.out_dim)

    def drop(prefix: str) -> None:
        for key in [k for k in pipeline if k.startswith(f"_model.{prefix}.")]:
            del pipeline[key]

    base = model.field.mlp_base.model
    base_size = mlp_size(base[1]) + grid_size(base[0])
    vectors["field.mlp_base.model.params"] = torch.randn(base_size, generator=generator) * 0.1
    drop("field.mlp_base.model")
    head_size = mlp_size(model.field.mlp_head)
    vectors["field.mlp_head.tcnn_encoding.params"] = torch.randn(head_size, generator=generator) * 0.1
    drop("field.mlp_head")
    for i, network in enumerate(model.proposal_networks):
        grid = torch.randn(grid_size(network.encoding), generator=generator) * 0.1
        vectors[f"proposal_networks.{i}.encoding.tcnn_encoding.params"] = grid
        vectors[f"proposal_networks.{i}.mlp_base.0.tcnn_encoding.params"] = grid
        head = torch.randn(mlp_size(network.mlp_base[1]), generator=generator)
        vectors[f"proposal_networks.{i}.mlp_base.1.tcnn_encoding.params"] = head
        drop(f"proposal_networks.{i}.encoding")
        drop(f"proposal_networks.{i}.mlp_base")
    pipeline.update({f"_model.{key}": value for key, value in vectors.items()})
    torch.save(state, checkpoint)
    return vectors


def test_a_tiny_cuda_nn_checkpoint_computes_what_tiny_cuda_nn_computes(tmp_path):
    """A checkpoint holding tcnn vectors loads on the CPU and its density is tiny-cuda-nn's, by its layout rules."""
    from nerfdata.encoders.hashgrid import HashGridConfig, hash_grid_encode_reference
    from nerfdata.fields.nerfstudio.tcnn import TcnnHashGrid, TcnnSphericalHarmonics
    from tests.test_tcnn_convert import tcnn_mlp_forward

    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    vectors = tcnn_checkpoint(run, torch.Generator().manual_seed(0))
    field = load_field(run / "config.yml").field
    modules = list(field.model.modules())
    assert sum(isinstance(m, TcnnHashGrid) for m in modules) == 1 + len(field.model.proposal_networks)
    assert any(isinstance(m, TcnnSphericalHarmonics) for m in modules)

    x = torch.rand(300, 3, generator=torch.Generator().manual_seed(1)) - 0.5
    grid = field.model.field.mlp_base.model[0].encoder.config
    hidden = field.model.field.mlp_base.model[1]
    n_mlp = 16 * 64 + 64 * 16  # 16 grid features -> 64 -> 16 (1 density + 15 geometry features)
    assert hidden.in_dim == grid.output_dim == 16
    with torch.no_grad():
        positions = (field.model.field.spatial_distortion(field.frame.to_nerfstudio(x)) + 2.0) / 4.0
        params = vectors["field.mlp_base.model.params"]
        features = hash_grid_encode_reference(positions, params[n_mlp:], grid)
        out = tcnn_mlp_forward(params[:n_mlp], features, [16, 64, 16], 16)
        expected = field.model.field.average_init_density * torch.exp(out[:, 0]) * field.frame.scale
        torch.testing.assert_close(field.density(x), expected, rtol=1e-4, atol=1e-6)
    assert isinstance(grid, HashGridConfig) and grid.num_levels == 8


def test_a_tiny_cuda_nn_vector_of_the_wrong_size_is_refused(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    tcnn_checkpoint(run, torch.Generator().manual_seed(0))
    (checkpoint,) = (run / "nerfstudio_models").glob("step-*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["pipeline"]["_model.field.mlp_head.tcnn_encoding.params"] = torch.zeros(100)
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match="mlp_head: tiny-cuda-nn MLP has"):
        load_field(run / "config.yml")


def test_nerfdatas_renderer_agrees_with_nerfstudios_and_gives_normals(loaded, test_camera):
    """nerfdata's own sampler on the field (bounded box, occupancy grid) against the model's proposal sampler."""
    from nerfdata.fields.occupancy import occupancy_grid_from_density
    from nerfdata.render.renderer import RenderOptions, render_image

    field = loaded.field
    camera = Camera(test_camera.c2w_opengl, test_camera.intrinsics.scaled(0.5))  # 32 x 32
    occupancy = occupancy_grid_from_density(field.density, field.aabb, 64)
    image = render_image(field, camera, RenderOptions(num_steps=512), occupancy)
    theirs = render_rays_nerfstudio(field, camera.rays())
    assert (image.rgb.reshape(-1, 3) - theirs.rgb).abs().mean() < 0.02
    surface = (image.accumulation.reshape(-1) > 0.5) & (theirs.accumulation > 0.5)
    assert surface.float().mean() > 0.1
    assert (image.depth_median.reshape(-1) - theirs.depth_median).abs()[surface].median() < 0.01
    normals = image.normal.reshape(-1, 3)[surface]
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(len(normals)), rtol=0, atol=1e-3)


def test_every_command_takes_a_nerfstudio_config(tmp_path, capsys):
    """--field config.yml through the CLI (mesh here); a bad run folder is one line and status 2."""
    from nerfdata.cli import main

    out = tmp_path / "mug.ply"
    assert main(["mesh", "--field", str(CONFIG), "--out", str(out), "--resolution", "24"]) == 0
    assert out.stat().st_size > 0
    (tmp_path / "run").mkdir()
    shutil.copy(CONFIG, tmp_path / "run" / "config.yml")
    capsys.readouterr()
    assert main(["mesh", "--field", str(tmp_path / "run" / "config.yml"), "--out", str(tmp_path / "x.ply")]) == 2
    error = capsys.readouterr().err.strip()
    assert "dataparser_transforms.json: not found" in error and "\n" not in error


def test_a_rendered_dataset_is_read_by_nerfstudios_dataparser(tmp_path):
    """`nerfdata render` writes a transforms.json that nerfstudio's nerfstudio-data parser reads as is."""
    import json

    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from nerfdata.config import from_dict
    from nerfdata.jobs.render import RenderJobConfig, run_render

    job = {
        "field": "scenes/analytic_demo", "out": str(tmp_path / "demo"),
        "views": [{"orbit": {"count": 4, "radius": 3.2, "elevation_deg": 30.0, "target": [0.0, -0.2, 0.0]}}],
        "camera": {"width": 24, "height": 20, "fov_deg": 45.0}, "render": {"num_steps": 128},
    }
    out = run_render(from_dict(RenderJobConfig, job, "test"), show_progress=False)
    written = json.loads((out / "transforms.json").read_text())
    parser = NerfstudioDataParserConfig(data=out, train_split_fraction=1.0, orientation_method="none",
                                        center_method="none", auto_scale_poses=False).setup()
    outputs = parser.get_dataparser_outputs("train")
    assert [p.name for p in outputs.image_filenames] == [Path(f["file_path"]).name for f in written["frames"]]
    assert all(Path(p).is_file() for p in outputs.metadata["depth_filenames"])
    assert outputs.metadata["depth_unit_scale_factor"] == pytest.approx(0.001)
    poses = torch.tensor([f["transform_matrix"] for f in written["frames"]], dtype=torch.float32)[:, :3]
    torch.testing.assert_close(outputs.cameras.camera_to_worlds, poses, rtol=0, atol=1e-5)  # no frame change asked
    assert float(outputs.cameras.fx[0]) == pytest.approx(written["frames"][0].get("fl_x", written.get("fl_x")))


def test_a_render_from_a_nerfstudio_run_records_the_undone_transform(tmp_path):
    import json

    from nerfdata.config import from_dict
    from nerfdata.jobs.render import RenderJobConfig, run_render

    job = {
        "field": str(CONFIG), "out": str(tmp_path / "ns"), "outputs": ["rgb", "depth"],
        "views": [{"orbit": {"count": 1, "radius": 2.4, "elevation_deg": 30.0, "target": [0.15, 0.15, 0.0]}}],
        "camera": {"width": 16, "height": 16, "fov_deg": 45.0}, "preview_views": 0,
    }
    out = run_render(from_dict(RenderJobConfig, job, "test"), show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["field"]["type"] == "nerfstudio"
    assert manifest["field"]["dataparser_transform"]["scale"] == pytest.approx(load_field(CONFIG).field.frame.scale)


# nerfstudio's PyTorch HashEncoding on nerfdata's kernels (nerfdata.fields.nerfstudio.hashgrid).

# (levels, min_res, max_res, log2 table, features): the shipped mug's grids, and others.
NERFSTUDIO_GRIDS = [
    (8, 16, 512, 16, 2), (5, 16, 128, 14, 2), (16, 16, 2048, 12, 2), (4, 8, 100, 10, 4), (1, 16, 16, 8, 1),
]


def _nerfstudio_encoding(levels: int, min_res: int, max_res: int, log2: int, features: int, seed: int = 0):
    from nerfstudio.field_components.encodings import HashEncoding

    encoding = HashEncoding(num_levels=levels, min_res=min_res, max_res=max_res, log2_hashmap_size=log2,
                            features_per_level=features, implementation="torch")
    with torch.no_grad():
        encoding.hash_table.normal_(generator=torch.Generator().manual_seed(seed))
    return encoding


@pytest.mark.parametrize("grid", NERFSTUDIO_GRIDS)
def test_our_kernels_compute_nerfstudios_hash_encoding(grid):
    """The reference, PyTorch and fused kernels in the "nerfstudio" layout against nerfstudio's own module.

    Same hash_table, random points (some on grid planes and vertices, some outside the unit cube):
    values and gradients (positions and table). Tolerances: the same float32 products summed in
    another order (nerfstudio interpolates pairwise, x then y then z; we sum weighted corners).
    """
    from nerfdata.encoders.fused import fused_available, hash_grid_encode_fused
    from nerfdata.encoders.hashgrid import hash_grid_encode, hash_grid_encode_reference
    from nerfdata.fields.nerfstudio.hashgrid import nerfstudio_layout_of

    encoding = _nerfstudio_encoding(*grid)
    config = nerfstudio_layout_of(encoding)
    assert config.scales == encoding.scalings.tolist() and config.num_entries == encoding.hash_table.shape[0]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4000, 3, generator=g)
    x[:500] = torch.randint(0, 65, (500, 3), generator=g) / 64.0
    x[500:700] = x[500:700] * 1.4 - 0.2
    cotangent = torch.randn(len(x), config.output_dim, generator=g)
    xs = x.clone().requires_grad_(True)
    theirs = encoding(xs)
    (theirs * cotangent).sum().backward()
    their_gx, their_gp = xs.grad, encoding.hash_table.grad.reshape(-1)
    encoders = [hash_grid_encode_reference, hash_grid_encode] + ([hash_grid_encode_fused] if fused_available() else [])
    assert fused_available() or hash_grid_encode_fused not in encoders  # the fused kernel runs where it compiles
    for encode in encoders:
        xs = x.clone().requires_grad_(True)
        params = encoding.hash_table.detach().reshape(-1).clone().requires_grad_(True)
        ours = encode(xs, params, config)
        (ours * cotangent).sum().backward()
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6 * float(theirs.abs().max()), msg=encode.__name__)
        torch.testing.assert_close(params.grad, their_gp, rtol=1e-5, atol=1e-5 * float(their_gp.abs().max()))
        torch.testing.assert_close(xs.grad, their_gx, rtol=1e-4, atol=1e-5 * float(their_gx.abs().max()))


def test_the_shipped_runs_grids_run_on_nerfdatas_kernels_with_the_checkpoints_weights(loaded, baseline):
    from nerfdata.fields.nerfstudio.checkpoint import find_checkpoint, read_checkpoint
    from nerfdata.fields.nerfstudio.config import read_nerfstudio_config
    from nerfdata.fields.nerfstudio.hashgrid import NerfstudioHashGrid

    model = loaded.field.model
    assert loaded.metadata["hash_grids"] == {
        "field.mlp_base.model.0": "nerfdata", "proposal_networks.0.encoding": "nerfdata",
        "proposal_networks.1.encoding": "nerfdata",
    }
    assert isinstance(model.field.mlp_base.model[0], NerfstudioHashGrid)
    assert model.proposal_networks[0].mlp_base[0] is model.proposal_networks[0].encoding  # registered twice, one grid
    tensors, _ = read_checkpoint(find_checkpoint(CONFIG, read_nerfstudio_config(CONFIG)))
    state = model.state_dict()
    assert set(state) == set(baseline.model.state_dict()) == set(tensors)  # the checkpoint's names and shapes
    for key, value in tensors.items():
        assert torch.equal(state[key], value), key


def test_the_swapped_field_answers_what_nerfstudios_modules_answer(loaded, baseline):
    """Density, colour and the density gradient (normals) of the swapped field against nerfstudio's own."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3000, 3, generator=generator) * 1.4 - 0.7
    d = torch.nn.functional.normalize(torch.randn(3000, 3, generator=generator), dim=-1)
    with torch.no_grad():
        ours, theirs = loaded.field.query(x, d), baseline.query(x, d)
    scale = float(theirs[0].abs().max())
    assert scale > 10.0  # the mug is there
    # Densities pass exp(): grid rounding of 1e-7 becomes a relative 1e-5 at most.
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-4, atol=1e-5 * scale)
    torch.testing.assert_close(ours[1], theirs[1], rtol=1e-4, atol=1e-5)
    grads = []
    for field_ in (loaded.field, baseline):
        xs = x.clone().requires_grad_(True)
        field_.density(xs).sum().backward()
        grads.append(xs.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-4 * float(grads[1].abs().max()))


def test_a_grid_nerfdata_does_not_reproduce_stays_nerfstudios():
    from nerfstudio.field_components.encodings import HashEncoding

    from nerfdata.fields.nerfstudio.hashgrid import NerfstudioHashGrid, swap_hash_encodings

    model = torch.nn.Sequential(_nerfstudio_encoding(4, 16, 128, 10, 2), _nerfstudio_encoding(2, 16, 64, 10, 3))
    tampered = _nerfstudio_encoding(3, 16, 64, 10, 2)
    tampered.scalings = tampered.scalings + 0.5  # not a layout nerfdata computes
    model.append(tampered)
    report = swap_hash_encodings(model)
    assert report["0"] == "nerfdata" and isinstance(model[0], NerfstudioHashGrid)
    assert report["1"].startswith("nerfstudio: hash grid features_per_level") and isinstance(model[1], HashEncoding)
    assert report["2"].startswith("nerfstudio: per-level scales") and model[2] is tampered


def test_nerfdatas_render_is_nerfstudios_own_at_40_db(loaded, baseline, test_camera):
    """nerfdata's renderer on the swapped field against ns-render's renderer on nerfstudio's own modules."""
    import numpy as np

    from nerfdata.fields.occupancy import occupancy_grid_from_density
    from nerfdata.render.renderer import RenderOptions, render_image

    occupancy = occupancy_grid_from_density(loaded.field.density, loaded.field.aabb, 64)
    ours = render_image(loaded.field, test_camera, RenderOptions(normals=False), occupancy).rgb.reshape(-1, 3)
    with torch.no_grad():
        theirs = baseline.model.get_outputs_for_camera(nerfstudio_camera(baseline, test_camera))["rgb"].reshape(-1, 3)
    psnr = -10 * np.log10(float(((ours - theirs) ** 2).mean()))
    assert psnr >= 40.0
