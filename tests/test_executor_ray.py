"""The executors: the same job gives the same files locally and on Ray (1 and 2 workers), through
failed attempts, a killed worker and a stopped driver; many fields in one job; no Ray installed.

Ray starts once for the module (``ray.init(num_cpus=2)``) and is shut down at its end; the jobs are
tiny (6 views at 32x32), and the workers are kept from job to job.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nerfdata.executors import ExecutorConfig, ShardsFailed
from nerfdata.executors.hooks import StoppedByHook
from nerfdata.fields.analytic import AnalyticField, Sphere
from nerfdata.fields.checkpoint import save_field
from nerfdata.jobs.correspond import CorrespondJobConfig, run_correspond
from nerfdata.jobs.inerf import InerfSolveConfig, InerfTargetsConfig, run_inerf_solve, run_inerf_targets
from nerfdata.jobs.render import CameraConfig, NamedField, RenderJobConfig, run_render
from nerfdata.labels.inerf import SolverConfig
from nerfdata.poses import OrbitConfig, SamplerConfig
from nerfdata.render.renderer import RenderOptions
from tests.conftest import files_of as every_file_of

FIELD = Path("scenes/analytic_demo")
ORBIT = SamplerConfig(orbit=OrbitConfig(count=6, radius=3.2, elevation_deg=30.0, target=(0.0, -0.2, 0.0)))
# A field of view drawn per view, in view order: its draws must not follow the order views are rendered in.
CAMERA = CameraConfig(width=32, height=32, fov_deg=45.0, fov_range_deg=(40.0, 50.0))


def ray_executor(workers: int, shard_size: int = 2) -> ExecutorConfig:
    return ExecutorConfig(kind="ray", num_workers=workers, shard_size=shard_size)


def render_job(out: Path, **kwargs) -> RenderJobConfig:
    base = RenderJobConfig(
        field=FIELD, out=out, views=(ORBIT,), camera=CAMERA, outputs=("rgb", "depth", "normals", "mask", "confidence"),
        render=RenderOptions(num_steps=256), preview_views=2, seed=5,
    )
    return replace(base, **kwargs)


def files_of(folder: Path, skip: tuple[str, ...] = ("manifest.json",)) -> dict[str, bytes]:
    """Every file but the manifest, whose records (executor, shards) differ between executors by design."""
    return every_file_of(folder, skip)


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def without_executor(manifest: dict) -> dict:
    """The manifest less what says where and how it ran: the executor, each view's shard and attempt."""
    manifest = {k: v for k, v in manifest.items() if k != "executor"}
    manifest["config"] = {k: v for k, v in manifest["config"].items() if k != "out"}
    manifest["views"] = [{k: v for k, v in view.items() if k not in ("shard", "attempt")} for view in manifest["views"]]
    return manifest


def assert_same_dataset(local: Path, other: Path) -> None:
    assert files_of(other) == files_of(local)
    assert without_executor(manifest_of(other)) == without_executor(manifest_of(local))
    assert manifest_of(other)["complete"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory) -> Path:
    return run_render(render_job(tmp_path_factory.mktemp("local") / "data"), show_progress=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_render_on_ray_is_byte_identical_to_local(ray_cluster, local_dataset, tmp_path, workers):
    out = run_render(render_job(tmp_path / "ray", executor=ray_executor(workers)), show_progress=False)
    assert_same_dataset(local_dataset, out)
    manifest = manifest_of(out)
    assert manifest["executor"] == {"kind": "ray", "workers": workers, "shard_size": 2}
    assert [(v["index"], v["shard"], v["attempt"]) for v in manifest["views"]] == [
        (i, i // 2, 0) for i in range(6)
    ]
    assert manifest["config_hash"] == manifest_of(local_dataset)["config_hash"]  # the executor is not the job


def correspond_job(dataset: Path, out: Path, **kwargs) -> CorrespondJobConfig:
    return CorrespondJobConfig(field=FIELD, dataset=dataset, out=out, pairs=4, per_pair=200, preview_pairs=1,
                               min_overlap=0.1, num_steps=256, **kwargs)


@pytest.fixture(scope="module")
def local_pairs(local_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs-local")
    run_correspond(correspond_job(local_dataset, out), show_progress=False)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_correspond_on_ray_is_byte_identical_to_local(ray_cluster, local_dataset, local_pairs, tmp_path, workers):
    result = run_correspond(
        correspond_job(local_dataset, tmp_path, executor=ray_executor(workers, shard_size=1)), show_progress=False
    )
    assert result.pairs == 4
    local = files_of(local_pairs / "correspondences", skip=("pairs.json", "manifest.json"))
    assert len([name for name in local if name.endswith(".npz")]) == 4
    assert files_of(tmp_path / "correspondences", skip=("pairs.json", "manifest.json")) == local
    manifests = [manifest_of(folder / "correspondences") for folder in (local_pairs, tmp_path)]
    assert manifests[1]["executor"] == {"kind": "ray", "workers": workers, "shard_size": 1}
    assert [{k: v for k, v in m.items() if k != "executor"} for m in manifests] == [
        {k: v for k, v in manifests[0].items() if k != "executor"}
    ] * 2 and manifests[1]["complete"]

    def index(folder: Path) -> dict:  # less where it was written (config.out)
        document = json.loads((folder / "correspondences/pairs.json").read_text())
        return {**document, "config": {k: v for k, v in document["config"].items() if k != "out"}}

    assert index(tmp_path) == index(local_pairs) and len(index(tmp_path)["pairs"]) == 4


def targets_job(out: Path, **kwargs) -> InerfTargetsConfig:
    return InerfTargetsConfig(field=FIELD, out=out, num=2, seed=3, width=32, height=24, mesh_resolution=24,
                              num_steps=256, **kwargs)


def solve_job(targets: Path, out: Path, **kwargs) -> InerfSolveConfig:
    solver = SolverConfig(iters=4, rays=64, num_steps=128, converge_window=0)
    return InerfSolveConfig(field=FIELD, targets=targets, out=out, solver=solver, hypotheses=2, **kwargs)


def timeless(results: dict) -> dict:
    """``results.json`` less the solver's wall-clock times (the only thing two runs may differ in)."""
    targets = [{k: v for k, v in t.items() if k != "seconds"} for t in results["targets"]]
    return {**{k: v for k, v in results.items() if k != "median_seconds"}, "targets": targets}


def bop_csv_without_time(path: Path) -> list[list[str]]:
    return [line.split(",")[:-1] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def local_targets(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("inerf-local") / "targets"
    run_inerf_targets(targets_job(out), show_progress=False)
    results = run_inerf_solve(solve_job(out, out / "results.json"), show_progress=False)
    return out, results


@pytest.mark.parametrize("workers", [1, 2])
def test_inerf_targets_and_solve_on_ray_are_identical_to_local(ray_cluster, local_targets, tmp_path, workers):
    local, local_results = local_targets
    out = tmp_path / "targets"
    run_inerf_targets(targets_job(out, executor=ray_executor(workers, shard_size=1)), show_progress=False)
    ray_files = files_of(out)
    local_files = files_of(local, skip=("manifest.json", "results.json", local_results["bop_results"]))
    assert ray_files == local_files and "inerf/targets.json" in ray_files
    manifest = manifest_of(out)  # the targets' files, listed by the driver (results aside: solve adds them)
    assert manifest["executor"] == {"kind": "ray", "workers": workers, "shard_size": 1} and manifest["complete"]
    local_manifest = manifest_of(local)
    solved = ("results.json", local_results["bop_results"])
    assert manifest["files"] == [f for f in local_manifest["files"] if f not in solved]
    results = run_inerf_solve(
        solve_job(out, out / "results.json", executor=ray_executor(workers, shard_size=1)), show_progress=False
    )
    assert len(results["targets"]) == 2
    expected = timeless(local_results)
    expected["config"] = {**expected["config"], "targets": str(out), "out": str(out / "results.json")}
    assert timeless(results) == expected
    csv = results["bop_results"]
    assert bop_csv_without_time(out / csv) == bop_csv_without_time(local / csv)


def test_a_shard_failing_once_is_rerun_and_the_dataset_is_identical(
    ray_cluster, local_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("NERFDATA_TEST_FAIL_ONCE", "3")
    out = run_render(render_job(tmp_path / "ray", executor=ray_executor(2)), show_progress=False)
    assert_same_dataset(local_dataset, out)
    attempts = {v["index"]: v["attempt"] for v in manifest_of(out)["views"]}
    assert attempts == {0: 0, 1: 0, 2: 1, 3: 1, 4: 0, 5: 0}  # views 2-3: shard 1, re-run once


def test_a_killed_worker_loses_nothing(ray_cluster, local_dataset, tmp_path, monkeypatch):
    pid_file = tmp_path / "worker.pid"
    monkeypatch.setenv("NERFDATA_TEST_PAUSE", f"4:{pid_file}")  # the shard of view 4 waits to be killed
    out = tmp_path / "ray"
    outcome: dict = {}

    def driver() -> None:
        try:
            outcome["out"] = run_render(render_job(out, executor=ray_executor(2)), show_progress=False)
        except BaseException as error:  # reported below, in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=driver)
    thread.start()
    deadline = time.monotonic() + 120
    while not pid_file.exists() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    assert pid != os.getpid()  # a Ray worker process, not this one
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=180)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert_same_dataset(local_dataset, out)
    attempts = {v["index"]: v["attempt"] for v in manifest_of(out)["views"]}
    assert attempts[4] == attempts[5] == 1 and all(attempts[i] == 0 for i in range(4))


def test_a_stopped_driver_reruns_only_the_missing_views(ray_cluster, local_dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ray"
    monkeypatch.setenv("NERFDATA_TEST_STOP_AFTER", "1")
    with pytest.raises(StoppedByHook):
        run_render(render_job(out, executor=ray_executor(1)), show_progress=True)
    stopped = manifest_of(out)
    assert not stopped["complete"] and [v["index"] for v in stopped["views"]] == [0, 1]
    monkeypatch.delenv("NERFDATA_TEST_STOP_AFTER")
    capsys.readouterr()
    run_render(render_job(out, executor=ray_executor(2)), show_progress=True)
    summary = [line for line in capsys.readouterr().out.splitlines() if line.startswith("render: 6 views")]
    assert len(summary) == 1 and "4 rendered, 2 kept from an earlier run" in summary[0]
    assert_same_dataset(local_dataset, out)
    assert [v["shard"] for v in manifest_of(out)["views"]] == [0, 0, 1, 1, 2, 2]


def test_a_shard_failing_every_attempt_fails_the_job_after_the_others(
    ray_cluster, local_dataset, tmp_path, monkeypatch
):
    out = tmp_path / "ray"
    monkeypatch.setenv("NERFDATA_TEST_FAIL", "1")
    with pytest.raises(ShardsFailed, match=r"shard 0 \(views 0-1\), attempt 3: injected failure at item 1"):
        run_render(render_job(out, executor=ray_executor(2)), show_progress=False)
    failed = manifest_of(out)
    assert not failed["complete"] and [v["index"] for v in failed["views"]] == [2, 3, 4, 5]
    assert not (out / "transforms.json").exists()
    monkeypatch.delenv("NERFDATA_TEST_FAIL")
    run_render(render_job(out, executor=ray_executor(2)), show_progress=False)
    assert_same_dataset(local_dataset, out)


def test_many_fields_in_one_job(ray_cluster, local_dataset, tmp_path):
    sphere = AnalyticField([Sphere((0.0, 0.0, 0.0), 0.5)], aabb=[[-1, -1, -1], [1, 1, 1]])
    fields = (NamedField("demo", FIELD), NamedField("sphere", save_field(sphere, tmp_path / "sphere").parent))
    job = render_job(tmp_path / "many", field=None, fields=fields, executor=ray_executor(2))
    out = run_render(job, show_progress=False)
    top = manifest_of(out)
    assert top["kind"] == "fields" and top["complete"]
    assert [(d["name"], d["path"], d["views"], d["complete"]) for d in top["datasets"]] == [
        ("demo", "demo", 6, True), ("sphere", "sphere", 6, True)
    ]
    assert sorted(p.name for p in out.iterdir()) == ["demo", "manifest.json", "sphere"]
    assert_same_dataset(local_dataset, out / "demo")  # each field's folder: the dataset of that field alone
    alone = run_render(render_job(tmp_path / "alone", field=fields[1].path), show_progress=False)
    assert_same_dataset(alone, out / "sphere")
    again = run_render(job, show_progress=False)  # a rerun finds everything done
    assert manifest_of(again) == top


def test_the_executor_flags(tmp_path):
    from nerfdata.cli import command
    from nerfdata.flags import parse_command

    def executor(*argv: str) -> ExecutorConfig:
        return parse_command(command("render"), ["--field", str(FIELD), *argv]).config.executor

    assert executor() == ExecutorConfig()
    assert executor("--executor", "ray").kind == "ray"
    assert executor("--ray-address", "10.0.0.1:6379") == ExecutorConfig(kind="ray", address="10.0.0.1:6379")
    assert executor("--executor", "ray", "--executor.shard_size", "8").shard_size == 8
    solve = parse_command(command("inerf solve"), ["--field", "f", "--targets", "t", "--executor", "ray"]).config
    assert solve.executor.kind == "ray"


def test_a_job_yaml_lists_fields_instead_of_field(tmp_path):
    from nerfdata.cli import command
    from nerfdata.errors import ConfigError
    from nerfdata.flags import parse_command

    job = tmp_path / "many.yaml"
    job.write_text("fields:\n  - {name: a, path: scenes/mug}\n  - {name: b, path: scenes/tabletop}\n")
    config = parse_command(command("render"), ["--config", str(job)]).config
    assert config.field is None and [(f.name, str(f.path)) for f in config.fields] == [
        ("a", "scenes/mug"), ("b", "scenes/tabletop")
    ]
    with pytest.raises(ConfigError, match="not both"):
        parse_command(command("render"), ["--config", str(job), "--field", "scenes/mug"])
    job.write_text("fields:\n  - {name: a, path: scenes/mug}\n  - {name: a, path: scenes/tabletop}\n")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_command(command("render"), ["--config", str(job)])
    job.write_text("fields:\n  - {name: ../a, path: scenes/mug}\n")
    with pytest.raises(ConfigError, match="plain folder name"):
        parse_command(command("render"), ["--config", str(job)])


_WITHOUT_RAY = """
import sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoRay())
import nerfdata
from nerfdata.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_ray_local_runs_and_ray_stops_with_one_line(tmp_path):
    base = ["render", "--field", str(FIELD), "--num-views", "1", "--camera.width", "16", "--camera.height", "16",
            "--render.num_steps", "64", "--preview_views", "0", "--outputs", "rgb", "depth"]

    def nerfdata(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _WITHOUT_RAY, *base, *argv], capture_output=True, text=True,
                              timeout=300)

    local = nerfdata("--out", str(tmp_path / "local"), "--executor", "local")
    assert local.returncode == 0, local.stderr
    assert manifest_of(tmp_path / "local")["complete"]
    distributed = nerfdata("--out", str(tmp_path / "ray"), "--executor", "ray")
    assert distributed.returncode == 2
    assert distributed.stderr.strip().splitlines() == [
        "nerfdata render: error: --executor ray needs Ray, which is not installed: pip install 'nerfdata[distributed]'"
    ]
    assert not (tmp_path / "ray").exists()  # refused before anything was written
