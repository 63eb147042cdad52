"""The device rule (``--device auto|cpu|cuda``): resolution, the CLI, byte-identical CPU outputs, and the
jobs on CUDA (marked ``cuda``: skipped, saying why, where torch sees no CUDA device)."""

import json
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from nerfdata.cli import command, main
from nerfdata.device import resolve_device
from nerfdata.errors import ConfigError
from nerfdata.executors import FieldSetup
from nerfdata.fields.loading import load_field
from nerfdata.flags import help_text
from nerfdata.jobs.correspond import CorrespondJobConfig, run_correspond
from nerfdata.jobs.inerf import InerfSolveConfig, InerfTargetsConfig, run_inerf_solve, run_inerf_targets
from nerfdata.jobs.mesh import MeshJobConfig, run_mesh
from nerfdata.jobs.render import CameraConfig, RenderJobConfig, run_render
from nerfdata.labels.inerf import SolverConfig
from nerfdata.labels.mesh import MeshConfig
from nerfdata.poses import OrbitConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions
from tests.conftest import files_of

FIELD = Path("scenes/analytic_demo")
ORBIT = SamplerConfig(orbit=OrbitConfig(count=2, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
EVERY_OUTPUT = ("rgb", "depth", "range", "normals", "mask", "confidence", "depth_modes")
COMMANDS = ("render", "train", "mesh", "correspond", "inerf targets", "inerf solve", "bench")


def render_job(out: Path, **kwargs) -> RenderJobConfig:
    base = RenderJobConfig(
        field=FIELD, out=out, views=(ORBIT,), camera=CameraConfig(width=32, height=24, fov_deg=45.0),
        outputs=EVERY_OUTPUT, render=RenderOptions(num_steps=512), preview_views=2,
    )
    return replace(base, **kwargs)


@pytest.fixture
def no_cuda(monkeypatch):
    """This process sees no CUDA device, whatever the machine has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ------------------------------------------------------------------------------------- the rule


def test_auto_is_the_cpu_without_cuda_and_cuda_is_refused_in_one_line(no_cuda):
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError) as raised:
        resolve_device("cuda")
    assert len(str(raised.value).splitlines()) == 1 and "no CUDA device" in str(raised.value)


def test_auto_is_the_current_cuda_device_where_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    # Indexed: the device tensors report ("cuda:0"), which torch.device("cuda") does not equal.
    assert resolve_device("auto") == torch.device("cuda", 0) == resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_the_device_flag(name):
    flag = "--device {auto,cpu,cuda}"
    text = help_text(command(name))
    assert flag in text and "[auto]" in text.split(flag, 1)[1].split("\n  --")[0]  # its default, auto


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "--field", str(FIELD), "--out", "OUT"],
        ["mesh", "--field", str(FIELD), "--out", "OUT/mesh.ply"],
        ["inerf", "targets", "--field", str(FIELD), "--out", "OUT"],
        ["bench", "--quick", "--out", "OUT/results.json"],
    ],
)
def test_device_cuda_without_cuda_exits_2_with_one_line_and_writes_nothing(argv, tmp_path, capsys, no_cuda):
    out = tmp_path / "out"
    status = main([a.replace("OUT", str(out)) for a in argv] + ["--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "device: cuda" in err and "no CUDA device" in err
    assert not out.exists()


def test_a_worker_resolves_the_jobs_device_itself(no_cuda):
    loaded = load_field(FIELD)
    runner = FieldSetup(lambda state, field, indices: [field.field.aabb.device.type], None, FIELD, loaded.sha256)()
    assert runner((0,)) == ["cpu"]  # auto, on a worker without a GPU
    with pytest.raises(ConfigError, match="no CUDA device"):
        FieldSetup(lambda *args: [], None, FIELD, loaded.sha256, "cuda")()


# ------------------------------------------------------------------------------------- on the CPU


def test_device_cpu_and_auto_write_the_same_bytes_and_the_same_job(tmp_path, no_cuda):
    cpu = run_render(render_job(tmp_path / "cpu", device="cpu"), show_progress=False)
    auto = run_render(render_job(tmp_path / "auto"), show_progress=False)
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (cpu, auto)]
    for manifest in manifests:
        manifest["config"].pop("out")  # where each was written
    assert manifests[0] == manifests[1]
    assert {k: v for k, v in files_of(cpu).items() if k != "manifest.json"} == {
        k: v for k, v in files_of(auto).items() if k != "manifest.json"
    }
    manifest = manifests[0]
    assert manifest["device"] == "cpu" and "device" not in manifest["config"]  # recorded, not part of the job
    # Another device is the same job: the dataset resumes, every view kept.
    before = files_of(cpu)
    run_render(render_job(tmp_path / "cpu", device="auto"), show_progress=False)
    assert files_of(cpu) == before


def test_mesh_correspond_and_inerf_records_keep_the_device_out_of_their_config(tmp_path, no_cuda):
    mesh = run_mesh(MeshJobConfig(field=FIELD, out=tmp_path / "m.ply", extraction=MeshConfig(resolution=24),
                                  device="cpu"))
    record = json.loads(mesh.path.with_name("m.ply.json").read_text())
    assert record["device"] == "cpu" and "device" not in record["config"]
    dataset = run_render(render_job(tmp_path / "data", outputs=("rgb", "depth"), preview_views=0), show_progress=False)
    folder = run_correspond(CorrespondJobConfig(dataset=dataset, field=FIELD, pairs=1, per_pair=64, preview_pairs=0,
                                                min_overlap=0.1, device="cpu"), show_progress=False).folder
    assert json.loads((folder / "manifest.json").read_text())["device"] == "cpu"
    assert "device" not in json.loads((folder / "pairs.json").read_text())["config"]
    targets = tmp_path / "targets"
    run_inerf_targets(InerfTargetsConfig(field=FIELD, out=targets, num=1, width=24, height=16, mesh_resolution=16,
                                         device="cpu"), show_progress=False)
    assert "device" not in json.loads((targets / "inerf/targets.json").read_text())["config"]
    assert json.loads((targets / "manifest.json").read_text())["device"] == "cpu"


# ------------------------------------------------------------------------------------- on CUDA


@pytest.mark.cuda
def test_render_job_on_cuda_writes_what_the_cpu_writes(tmp_path):
    cpu = run_render(render_job(tmp_path / "cpu", device="cpu"), show_progress=False)
    gpu = run_render(render_job(tmp_path / "gpu", device="cuda"), show_progress=False)
    manifest = json.loads((gpu / "manifest.json").read_text())
    assert manifest["device"].startswith("cuda") and manifest["config_hash"] == json.loads(
        (cpu / "manifest.json").read_text()
    )["config_hash"]
    assert sorted(files_of(gpu)) == sorted(files_of(cpu))
    for index in range(2):
        a = iio.imread(cpu / f"images/{index:05d}.png").astype(int)
        b = iio.imread(gpu / f"images/{index:05d}.png").astype(int)
        assert np.quantile(np.abs(a - b), 0.995) <= 2  # 8-bit levels
        mask = iio.imread(cpu / f"masks/{index:05d}.png") > 127
        depth_a, depth_b = np.load(cpu / f"depth/{index:05d}.npy"), np.load(gpu / f"depth/{index:05d}.npy")
        step = load_field(FIELD).field.extent / 512
        assert np.quantile(np.abs(depth_a - depth_b)[mask], 0.99) <= step


@pytest.mark.cuda
def test_mesh_correspond_and_inerf_jobs_run_on_cuda(tmp_path):
    mesh = run_mesh(MeshJobConfig(field=FIELD, out=tmp_path / "m.ply", extraction=MeshConfig(resolution=32),
                                  device="cuda"))
    assert json.loads(mesh.path.with_name("m.ply.json").read_text())["device"].startswith("cuda")
    assert mesh.stats.faces > 0
    dataset = run_render(render_job(tmp_path / "data", outputs=("rgb", "depth"), preview_views=0), show_progress=False)
    result = run_correspond(CorrespondJobConfig(dataset=dataset, field=FIELD, pairs=1, per_pair=128, min_overlap=0.1,
                                                preview_pairs=1, device="cuda"), show_progress=False)
    assert result.valid > 0
    targets = tmp_path / "targets"
    run_inerf_targets(InerfTargetsConfig(field=FIELD, out=targets, num=1, width=32, height=24, mesh_resolution=16,
                                         device="cuda"), show_progress=False)
    results = run_inerf_solve(InerfSolveConfig(field=FIELD, targets=targets, solver=SolverConfig(iters=3, rays=256),
                                               device="cuda"), show_progress=False)
    assert results["device"].startswith("cuda") and len(results["targets"]) == 1
