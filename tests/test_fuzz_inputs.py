"""Fuzzing the loaders: mutated field.json, transforms.json, targets.json and job YAML files.

Each example takes a valid file, replaces, deletes or adds values anywhere in it (or cuts its text
short), writes it and loads it. The loader must succeed or raise a :class:`NerfDataError` (one
line at the CLI), never another exception. Bounded for CI: a fixed number of examples, derandomized.
"""

import json
import shutil
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerfdata.errors import NerfDataError
from nerfdata.fields.checkpoint import load_checkpoint, save_field
from nerfdata.flags import parse_command
from nerfdata.jobs.inerf import read_targets
from nerfdata.writers.transforms import read_transforms
from tests.test_ngp import make_field

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_FLOATS = st.sampled_from([0.0, -1.0, 1e-300, 1e300, 1e400, -1e400, float("nan"), 0.5, -0.0])
_SCALARS = st.one_of(
    st.none(), st.booleans(), _FLOATS, st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2, 7, 2**31, 2**63, 2**64, -(2**63) - 1, 10**30]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["", "abc", "../x.png", "/etc/passwd", "inf", "-inf", "nan", "a/b", "\x00", "ngp"]),
    st.just("images/00000.png"),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``value`` (dict keys and list indices), the root included."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*prefix, index))
    return paths


@st.composite
def mutated(draw, document: Any) -> Any:
    """``document`` with 1 to 3 random edits: a value replaced, a key deleted or added, a list emptied."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add", "empty", "duplicate"]))
        if not path:
            if action == "replace":
                document = draw(_VALUES)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last, target = path[-1], parent[path[-1]]
        if action == "replace":
            parent[last] = draw(_VALUES)
        elif action == "delete":
            parent.pop(last)
        elif action == "add" and isinstance(target, dict):
            target[draw(st.text(max_size=6))] = draw(_VALUES)
        elif action == "empty" and isinstance(target, (list, dict)):
            parent[last] = type(target)()
        elif action == "duplicate" and isinstance(target, list) and target:
            target.append(json.loads(json.dumps(target[0])))
        else:
            parent[last] = draw(_SCALARS)
    return document


@st.composite
def json_text(draw, document: Any) -> str:
    """Mutated ``document`` as JSON text (Python's: NaN and Infinity as it writes them), perhaps cut short."""
    text = json.dumps(draw(mutated(document)))
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


def _accepts(load, folder: Path | None = None) -> None:
    """Call ``load``: success and a one-line NerfDataError (naming ``folder``'s file) pass, anything else fails."""
    try:
        load()
    except NerfDataError as error:
        assert "\n" not in str(error), str(error)
        assert folder is None or str(folder) in str(error), str(error)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_field(make_field(), tmp_path_factory.mktemp("fuzz") / "ckpt", metadata={"meters_per_unit": 1.0})


@FUZZ
@given(data=st.data())
def test_mutated_field_json(checkpoint, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("field")
    shutil.copy(checkpoint.with_suffix(".safetensors"), folder / "field.safetensors")
    (folder / "field.json").write_text(data.draw(json_text(json.loads(checkpoint.read_text()))))
    _accepts(lambda: load_checkpoint(folder), folder)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dataset")
    (folder / "images").mkdir()
    pose = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    frames = []
    for index in range(2):
        iio.imwrite(folder / "images" / f"{index:05d}.png", np.zeros((6, 8, 3), np.uint8))
        frames.append({"file_path": f"images/{index:05d}.png", "depth_file_path": f"depth/{index:05d}.png",
                       "fl_x": 8.0, "fl_y": 8.0, "cx": 4.0, "cy": 3.0, "w": 8, "h": 6, "transform_matrix": pose})
    content = {"camera_model": "OPENCV", "k1": 0.0, "aabb": [[-1, -1, -1], [1, 1, 1]], "meters_per_unit": 1.0,
               "train_filenames": ["images/00000.png"], "test_filenames": ["images/00001.png"], "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(content))
    return folder


@FUZZ
@given(data=st.data())
def test_mutated_transforms_json(dataset, data):
    text = data.draw(json_text(json.loads((dataset / "transforms.json").read_text())))
    path = dataset / "mutated.json"
    path.write_text(text)
    _accepts(lambda: read_transforms(path).split("train"), dataset)
    _accepts(lambda: read_transforms(path, require_images=False), dataset)


@FUZZ
@given(data=st.data())
def test_mutated_targets_json(dataset, data):
    root = dataset / "targets"
    (root / "inerf").mkdir(parents=True, exist_ok=True)
    pose = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]]
    entry = {"id": 0, "image": "../images/00000.png", "K": [[8.0, 0.0, 4.0], [0.0, 8.0, 3.0], [0.0, 0.0, 1.0]],
             "width": 8, "height": 6, "gt_c2w": pose, "init_c2w": pose, "seed": 0}
    document = {"format": "nerfdata-inerf-targets", "meters_per_unit": 1.0, "targets": [entry, {**entry, "id": 1}]}
    (root / "inerf" / "targets.json").write_text(data.draw(json_text(document)))
    _accepts(lambda: read_targets(root), root)


@FUZZ
@given(data=st.data())
def test_mutated_job_yaml(tmp_path_factory, data):
    from nerfdata.cli import command

    job = yaml.safe_load(Path("configs/demo.yaml").read_text())
    job["views"].append({"perturb": {"poses": "scenes/room/cameras.json", "per_pose": 2}})
    text = yaml.safe_dump(data.draw(mutated(job)), sort_keys=False)
    if data.draw(st.integers(0, 9)) == 0:
        text = text[: data.draw(st.integers(0, len(text)))]
    path = tmp_path_factory.mktemp("yaml") / "job.yaml"
    path.write_text(text)
    _accepts(lambda: parse_command(command("render"), ["--config", str(path)]))
