"""transforms.json reading: Blender split files give their dataset-wide keys together."""

import json

import numpy as np
import pytest

from nerfdata.errors import NerfDataError
from nerfdata.writers.transforms import read_transforms

AABB = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]


def _blender(folder, splits: dict[str, dict]) -> None:
    """Blender split files, one frame each (no images: w, h given), with the given top-level keys."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, (split, keys) in enumerate(splits.items()):
        pose = np.eye(4)
        pose[2, 3] = 3.0 + index
        frame = {"file_path": f"./{split}/r_0", "transform_matrix": pose.tolist()}
        content = {"camera_angle_x": 0.8, "w": 30, "h": 20, **keys, "frames": [frame]}
        (folder / f"transforms_{split}.json").write_text(json.dumps(content))


def test_dataset_keys_come_from_the_split_file_that_gives_them(tmp_path):
    # Only the first file read (train) states the box and the scale; the others must not erase them.
    _blender(tmp_path, {"train": {"aabb": AABB, "meters_per_unit": 0.5, "depth_unit_scale_factor": 0.01},
                        "val": {}, "test": {}})
    dataset = read_transforms(tmp_path, require_images=False)
    assert [f.split for f in dataset.frames] == ["train", "val", "test"]
    np.testing.assert_array_equal(dataset.aabb, np.array(AABB))
    assert dataset.meters_per_unit == 0.5 and dataset.depth_unit_scale_factor == 0.01


def test_split_files_that_repeat_dataset_keys_agree(tmp_path):
    same = {"aabb": AABB, "meters_per_unit": 0.5}
    _blender(tmp_path, {"train": same, "val": same, "test": same})
    dataset = read_transforms(tmp_path, require_images=False)
    assert dataset.meters_per_unit == 0.5 and dataset.aabb is not None


def test_split_files_that_disagree_are_an_error_naming_both(tmp_path):
    _blender(tmp_path, {"train": {"meters_per_unit": 0.5}, "val": {}, "test": {"meters_per_unit": 0.25}})
    both = r"transforms_train\.json and .*transforms_test\.json disagree on meters_per_unit"
    with pytest.raises(NerfDataError, match=both):
        read_transforms(tmp_path, require_images=False)


def test_a_bad_aabb_names_the_file_that_gives_it(tmp_path):
    _blender(tmp_path, {"train": {}, "val": {"aabb": [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]}})
    with pytest.raises(NerfDataError, match=r"transforms_val\.json: aabb must be"):
        read_transforms(tmp_path, require_images=False)
