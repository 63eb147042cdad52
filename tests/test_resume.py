"""Nothing lost, nothing wrong marked complete (issue 20, output side): resume by content, the output
folder's lock, overwrite that removes only nerfdata's files, temp files of a killed run, correspond's
checks of its dataset and field, outputs checked before any work, solve's partial results."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import nerfdata.jobs.inerf as inerf_module
import nerfdata.jobs.mesh as mesh_module
import nerfdata.jobs.render as render_module
from nerfdata.cameras import Camera, Intrinsics
from nerfdata.cli import main
from nerfdata.errors import NerfDataError
from nerfdata.fields.analytic import AnalyticField, Sphere
from nerfdata.fields.checkpoint import save_field
from nerfdata.fields.loading import load_field
from nerfdata.jobs.correspond import CorrespondJobConfig, run_correspond
from nerfdata.jobs.inerf import InerfSolveConfig, InerfTargetsConfig, run_inerf_solve, run_inerf_targets
from nerfdata.jobs.mesh import MeshJobConfig, mesh_record_path, run_mesh
from nerfdata.jobs.render import CameraConfig, RenderJobConfig, render_job_hash, run_render
from nerfdata.labels.inerf import SolverConfig
from nerfdata.labels.mesh import MeshConfig
from nerfdata.poses import FileConfig, OrbitConfig, SamplerConfig, sample_views
from nerfdata.render.renderer import RenderOptions
from nerfdata.writers.output_folder import LOCK_NAME
from nerfdata.writers.transforms import FrameRecord, read_cameras, read_transforms, write_transforms
from tests.conftest import files_of
from tests.test_output_folder import hold_lock, release

FIELD = Path("scenes/analytic_demo")
ORBIT = SamplerConfig(orbit=OrbitConfig(count=3, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))


def job(out: Path, **kwargs) -> RenderJobConfig:
    base = RenderJobConfig(field=FIELD, out=out, views=(ORBIT,), camera=CameraConfig(width=20, height=16),
                           outputs=("rgb", "depth"), render=RenderOptions(num_steps=128), preview_views=1)
    return replace(base, **kwargs)


@pytest.fixture
def renders(monkeypatch) -> list[int]:
    """Counts the views the render job renders."""
    calls: list[int] = []
    original = render_module.render_image

    def counting(field, camera, options, occupancy=None):
        calls.append(camera.intrinsics.width)
        return original(field, camera, options, occupancy)

    monkeypatch.setattr(render_module, "render_image", counting)
    return calls


# ------------------------------------------------------------------------- 1. resume by content


def test_resume_keys_on_the_poses_themselves_not_on_the_poses_path(tmp_path, renders):
    poses = tmp_path / "poses.json"
    frames = [FrameRecord(Camera(v.c2w_opengl, Intrinsics.from_fov(20, 16, 45.0)), f"images/{i:05d}.png")
              for i, v in enumerate(sample_views((ORBIT,), 0, read_cameras))]
    write_transforms(poses, frames)
    out = tmp_path / "out"
    config = job(out, views=(SamplerConfig(file=FileConfig(path=poses)),))
    run_render(config, show_progress=False)
    before = files_of(out)
    # The same command after swapping two frames' poses in the file: a different job, refused, nothing touched.
    content = json.loads(poses.read_text())
    first, second = content["frames"][0], content["frames"][1]
    first["transform_matrix"], second["transform_matrix"] = second["transform_matrix"], first["transform_matrix"]
    poses.write_text(json.dumps(content))
    with pytest.raises(NerfDataError, match="holds a different nerfdata job"):
        run_render(config, show_progress=False)
    assert files_of(out) == before
    # Replaced: every view rendered again, images and poses paired as in the new file.
    renders.clear()
    run_render(replace(config, overwrite=True), show_progress=False)
    assert renders.count(20) == 3  # (the rest: coverage probes)
    after = files_of(out)
    assert after["images/00000.png"] == before["images/00001.png"]
    assert after["images/00001.png"] == before["images/00000.png"]
    assert after["images/00002.png"] == before["images/00002.png"]
    written, given = read_transforms(out).frames, read_transforms(poses, require_images=False).frames
    assert torch.equal(written[0].camera.c2w_opengl, given[0].camera.c2w_opengl)
    # The same poses under another name: the same job, kept as it is.
    moved = tmp_path / "moved.json"
    shutil.copy(poses, moved)
    renders.clear()
    run_render(replace(config, views=(SamplerConfig(file=FileConfig(path=moved)),)), show_progress=False)
    assert renders == [] and files_of(out).keys() == after.keys()


def test_resume_keys_on_the_fields_content_not_its_path(tmp_path, renders):
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(FIELD, checkpoint)
    out = tmp_path / "out"
    run_render(job(out, field=checkpoint), show_progress=False)
    before = files_of(out)
    # Retrained (new tensors) into the same folder: a different job, refused; replaced, it is rendered anew.
    save_field(AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]]), checkpoint)
    with pytest.raises(NerfDataError, match="holds a different nerfdata job"):
        run_render(job(out, field=checkpoint), show_progress=False)
    assert files_of(out) == before
    renders.clear()
    run_render(job(out, field=checkpoint, overwrite=True), show_progress=False)
    assert renders.count(20) == 3  # (the rest: coverage probes)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["field"]["sha256"] == load_field(checkpoint).sha256
    assert files_of(out)["images/00000.png"] != before["images/00000.png"]
    # The same field elsewhere: resumed.
    moved = tmp_path / "moved"
    shutil.copytree(checkpoint, moved)
    renders.clear()
    run_render(job(out, field=moved), show_progress=False)
    assert renders == []


def test_the_job_hash_covers_the_fields_description_not_its_path(tmp_path):
    field = load_field(FIELD)
    description = json.loads(field.json_path.read_text())
    cameras = [Camera(v.c2w_opengl, Intrinsics.from_fov(8, 6, 45.0)) for v in sample_views((ORBIT,), 0, read_cameras)]
    resolved = {"seed": 0, "field": "a path", "out": "another", "views": "samplers"}
    base = render_job_hash(resolved, field, cameras)
    moved = tmp_path / "moved.json"
    moved.write_bytes(field.json_path.read_bytes())
    assert render_job_hash(resolved | {"field": "x", "out": "y", "views": "z"}, replace(field, json_path=moved),
                           cameras) == base
    description["config"]["primitives"][1]["material"]["color"] = [0.1, 0.9, 0.1]  # the same tensors
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(description, indent=2))
    assert render_job_hash(resolved, replace(field, json_path=edited), cameras) != base
    assert render_job_hash(resolved, replace(field, sha256="0" * 64), cameras) != base
    assert render_job_hash(resolved, field, [cameras[1], cameras[0], *cameras[2:]]) != base
    wider = [Camera(c.c2w_opengl, Intrinsics.from_fov(8, 6, 50.0)) for c in cameras]
    assert render_job_hash(resolved, field, wider) != base
    assert render_job_hash(resolved | {"seed": 1}, field, cameras) != base


# ------------------------------------------------------------------------------------- 2. lock


def test_a_second_job_on_a_locked_folder_stops_at_once_with_one_line(tmp_path, renders, capsys):
    out = tmp_path / "out"
    process = hold_lock(out)
    try:
        status = main(["render", "--field", str(FIELD), "--out", str(out), "--camera.width", "8",
                       "--camera.height", "8", "--num-views", "2", "--outputs", "rgb", "--preview-views", "0"])
    finally:
        release(process)
    err = capsys.readouterr().err
    assert status == 2 and renders == []
    assert err.count("\n") == 1 and "another nerfdata job is writing this folder" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # the holder's lock file, nothing of ours


# --------------------------------------------------------------------- 3. overwrite only our files


def test_overwrite_never_removes_a_users_file_beside_the_output(tmp_path):
    out = tmp_path / "out"
    run_render(job(out), show_progress=False)
    (out / "thesis.pdf").write_bytes(b"three years of work")
    before = files_of(out)
    for overwrite in (True, False):
        with pytest.raises(NerfDataError, match=r"did not write \(thesis.pdf\)"):
            run_render(job(out, seed=5, overwrite=overwrite), show_progress=False)
    assert files_of(out) == before


@pytest.mark.parametrize("kind", ["checkpoint", "nerfstudio"])
def test_overwrite_never_removes_a_checkpoint(tmp_path, kind):
    folder = tmp_path / "scenes" / "mug"
    if kind == "checkpoint":
        shutil.copytree(FIELD, folder)
    else:
        (folder / "nerfstudio_models").mkdir(parents=True)
        (folder / "config.yml").write_text("method_name: nerfacto\n")
        (folder / "nerfstudio_models/step-000000799.ckpt").write_bytes(b"weights")
    before = files_of(folder)
    with pytest.raises(NerfDataError, match="not a nerfdata output"):
        run_render(job(folder, overwrite=True), show_progress=False)
    assert files_of(folder) == before


def test_inerf_targets_overwrite_never_removes_a_users_file(tmp_path):
    out = tmp_path / "targets"
    config = InerfTargetsConfig(field=FIELD, out=out, num=1, width=16, height=12, mesh=False)
    run_inerf_targets(config, show_progress=False)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(NerfDataError, match=r"did not write \(notes.txt\)"):
        run_inerf_targets(replace(config, seed=2, overwrite=True), show_progress=False)
    assert (out / "notes.txt").read_text() == "mine" and (out / "inerf/targets.json").is_file()
    (out / "notes.txt").unlink()
    run_inerf_targets(replace(config, seed=2, overwrite=True), show_progress=False)
    assert json.loads((out / "inerf/targets.json").read_text())["seed"] == 2


# ------------------------------------------------------------------ 10 (half). a killed run's temp files


def test_resume_removes_our_temp_files_and_keeps_a_users(tmp_path, renders):
    out = tmp_path / "out"
    run_render(job(out), show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False  # as a kill leaves it: a view not done, a file half written
    manifest["views"] = manifest["views"][:2]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "images/00002.png").unlink()
    stale = [out / "images/.00002.png.k2x_9q0a.tmp", out / ".transforms.json.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    users = out / "images/draft.00002.tmp"
    users.write_text("mine")
    renders.clear()
    run_render(job(out), show_progress=False)
    assert renders.count(20) == 1 and not any(path.exists() for path in stale)
    assert users.read_text() == "mine"
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    assert not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------------ correspond (1, 3, 5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    orbit = SamplerConfig(orbit=OrbitConfig(count=4, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
    out = tmp_path_factory.mktemp("resume") / "data"
    return run_render(job(out, views=(orbit,), preview_views=0), show_progress=False)


def correspond(dataset: Path, **kwargs) -> CorrespondJobConfig:
    return CorrespondJobConfig(dataset=dataset, **{"pairs": 2, "per_pair": 40, "preview_pairs": 1, **kwargs})


def test_correspond_defaults_to_the_datasets_field_and_refuses_another(dataset, tmp_path):
    result = run_correspond(correspond(dataset, out=tmp_path / "a"), show_progress=False)
    index = json.loads((result.folder / "pairs.json").read_text())
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert index["field"] == {k: manifest["field"][k] for k in ("path", "sha256", "type")}
    other = tmp_path / "other"
    save_field(AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]]), other)
    with pytest.raises(NerfDataError, match="made from a different field than"):
        run_correspond(correspond(dataset, field=other, out=tmp_path / "b"), show_progress=False)
    assert not (tmp_path / "b").exists()
    unnamed = tmp_path / "unnamed"
    shutil.copytree(dataset, unnamed)
    manifest_without = {k: v for k, v in manifest.items() if k != "field"}
    (unnamed / "manifest.json").write_text(json.dumps(manifest_without))
    with pytest.raises(NerfDataError, match="names no field; pass --field"):
        run_correspond(correspond(unnamed), show_progress=False)


def test_correspond_refuses_a_dataset_that_is_not_complete(dataset, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(dataset, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    (partial / "manifest.json").write_text(json.dumps(manifest | {"complete": False}))
    with pytest.raises(NerfDataError, match="the dataset is not complete"):
        run_correspond(correspond(partial, field=FIELD), show_progress=False)
    assert not (partial / "correspondences").exists()


def test_correspond_replaces_an_earlier_export_only_with_overwrite_and_only_its_files(dataset, tmp_path):
    out = tmp_path / "x"
    first = run_correspond(correspond(dataset, out=out), show_progress=False).folder
    before = files_of(first)
    run_correspond(correspond(dataset, out=out), show_progress=False)  # the same job: the same files
    assert files_of(first) == before
    copy = tmp_path / "copy"  # the same dataset elsewhere is the same job
    shutil.copytree(dataset, copy)
    run_correspond(correspond(copy, out=out), show_progress=False)
    after = files_of(first)
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in after if k != "pairs.json")
    before = after  # pairs.json says where the dataset is
    changed = tmp_path / "changed"  # a dataset of other content is not (its manifest's checksum)
    shutil.copytree(dataset, changed)
    (changed / "manifest.json").write_text(json.dumps(json.loads((dataset / "manifest.json").read_text())))
    with pytest.raises(NerfDataError, match="holds a different nerfdata job"):
        run_correspond(correspond(changed, out=out), show_progress=False)
    with pytest.raises(NerfDataError, match="holds a different nerfdata job"):
        run_correspond(correspond(dataset, out=out, pairs=1), show_progress=False)
    (first / "my_labels.npz").write_bytes(b"mine")
    with pytest.raises(NerfDataError, match=r"did not write \(my_labels.npz\)"):
        run_correspond(correspond(dataset, out=out, pairs=1, overwrite=True), show_progress=False)
    assert files_of(first) == before | {"my_labels.npz": b"mine"}
    (first / "my_labels.npz").unlink()
    run_correspond(correspond(dataset, out=out, pairs=1, overwrite=True), show_progress=False)
    pairs = json.loads((first / "pairs.json").read_text())["pairs"]
    expected = {"manifest.json", "pairs.json", pairs[0]["file"], pairs[0]["preview"]}
    assert set(files_of(first)) == expected and len(pairs) == 1


# --------------------------------------------------------------------------------- mesh (3, 6)


def test_mesh_out_is_checked_before_extraction_and_only_our_mesh_replaced(tmp_path, monkeypatch):
    config = MeshJobConfig(field=FIELD, out=tmp_path / "m.ply", extraction=MeshConfig(resolution=16))
    original = mesh_module.extract_mesh

    def not_now(*args, **kwargs):
        raise AssertionError("extracted before the output was checked")

    monkeypatch.setattr(mesh_module, "extract_mesh", not_now)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    users = tmp_path / "scan.ply"
    users.write_bytes(b"ply\nmy scan")
    (tmp_path / "folder.ply").mkdir()
    cases = [
        (replace(config, out=tmp_path / "folder.ply"), "is a folder"),
        (replace(config, out=a_file / "m.ply"), "which is a file"),
        (replace(config, out=users), "exists; choose another --out, or pass --overwrite"),
    ]
    for case, message in cases:
        with pytest.raises(NerfDataError, match=message):
            run_mesh(case)
    with pytest.raises(NerfDataError, match="was not written by nerfdata"):
        run_mesh(replace(config, out=users, overwrite=True))
    assert users.read_bytes() == b"ply\nmy scan"
    monkeypatch.setattr(mesh_module, "extract_mesh", original)
    result = run_mesh(config)
    record = json.loads(mesh_record_path(result.path).read_text())
    assert record["kind"] == "mesh" and record["file"] == "m.ply"
    with pytest.raises(NerfDataError, match="exists; choose another --out, or pass --overwrite"):
        run_mesh(config)
    run_mesh(replace(config, overwrite=True))  # ours, unchanged since: replaced
    result.path.write_bytes(result.path.read_bytes() + b" edited")  # changed since: the user's now
    edited = result.path.read_bytes()
    monkeypatch.setattr(mesh_module, "extract_mesh", not_now)
    with pytest.raises(NerfDataError, match="was not written by nerfdata, or was changed since"):
        run_mesh(replace(config, overwrite=True))
    assert result.path.read_bytes() == edited


# ------------------------------------------------------------------------------ inerf solve (6)


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("solve") / "targets"
    run_inerf_targets(InerfTargetsConfig(field=FIELD, out=out, num=2, seed=3, width=24, height=16, mesh=False),
                      show_progress=False)
    return out


def solve(targets: Path, **kwargs) -> InerfSolveConfig:
    return InerfSolveConfig(field=FIELD, targets=targets, solver=SolverConfig(iters=2, rays=16, num_steps=64),
                            **kwargs)


def test_solve_refuses_bad_outputs_and_units_before_solving(targets, tmp_path, monkeypatch):
    def not_now(*args, **kwargs):
        raise AssertionError("solved before the inputs and outputs were checked")

    monkeypatch.setattr(inerf_module, "solve_pose", not_now)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    (tmp_path / "notes.json").write_text('{"mine": true}')
    for out, message in ((tmp_path, "is a folder"), (a_file / "results.json", "which is a file"),
                         (tmp_path / "notes.json", "not a nerfdata results file")):
        with pytest.raises(NerfDataError, match=message):
            run_inerf_solve(solve(targets, out=out), show_progress=False)
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}'
    broken = tmp_path / "broken"
    shutil.copytree(targets, broken)
    document = json.loads((broken / "inerf/targets.json").read_text())
    (broken / "inerf/targets.json").write_text(json.dumps(document | {"meters_per_unit": "abc"}))
    with pytest.raises(NerfDataError, match="meters_per_unit must be a positive number"):
        run_inerf_solve(solve(broken), show_progress=False)


def test_solve_keeps_finished_targets_through_a_late_failure_and_resumes(targets, tmp_path, monkeypatch):
    copy = tmp_path / "targets"
    shutil.copytree(targets, copy)
    calls = []
    original = inerf_module.solve_pose

    def failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(inerf_module, "solve_pose", failing_second)
    with pytest.raises(RuntimeError, match="killed"):
        run_inerf_solve(solve(copy), show_progress=False)
    partial = json.loads((copy / "inerf/results.json").read_text())
    assert partial["complete"] is False and [r["id"] for r in partial["targets"]] == [0]
    calls.clear()
    monkeypatch.setattr(inerf_module, "solve_pose", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    results = run_inerf_solve(solve(copy), show_progress=False)
    assert len(calls) == 1 and results["complete"] is True and [r["id"] for r in results["targets"]] == [0, 1]
    assert results["targets"][0] == partial["targets"][0]
    assert (copy / "inerf" / results["bop_results"]).is_file()
    # The results are the targets folder's files now: replacing the targets removes them, nothing else.
    listed = json.loads((copy / "manifest.json").read_text())["files"]
    assert "inerf/results.json" in listed and f"inerf/{results['bop_results']}" in listed
    run_inerf_targets(InerfTargetsConfig(field=FIELD, out=copy, num=1, seed=9, width=24, height=16, mesh=False,
                                         overwrite=True), show_progress=False)
    assert not (copy / "inerf/results.json").exists()
