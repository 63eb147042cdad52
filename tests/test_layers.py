"""The layer registry: one path template per layer, documented encodings, range checks before writing."""

import imageio.v3 as iio
import numpy as np
import pytest

from nerfdata.errors import NerfDataError
from nerfdata.labels.view_labels import label_arrays
from nerfdata.writers.layers import LAYER_WRITERS, LAYERS, layer_specs, write_view_layers

H, W = 4, 5


def _normals() -> np.ndarray:
    normals = np.zeros((H, W, 3), np.float32)
    normals[1:3, 1:4] = np.array([0.0, 0.6, 0.8], np.float32)
    return normals


def _every_array() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 3.0, (H, W))
    return {
        "rgb": rng.uniform(0.0, 1.0, (H, W, 3)).astype(np.float32),
        "depth": depth,
        "range": depth * 1.1,
        "normals": _normals(),
        "mask": depth > 1.0,
        "confidence": rng.uniform(0.0, 1.0, (H, W)).astype(np.float32),
        "normal_confidence": rng.uniform(0.0, 1.0, (H, W)).astype(np.float32),
        "valid": depth > 2.0,
        "depth_modes": np.zeros((H, W, 4, 2), np.float16),
        "object_id": np.arange(H * W, dtype=np.int64).reshape(H, W),
    }


def test_every_file_goes_where_its_manifest_spec_says(tmp_path):
    files = write_view_layers(tmp_path, 12, np.eye(3), **_every_array())
    assert set(files) == set(LAYERS)
    for name, path in files.items():
        assert path == LAYERS[name]["files"].format(index=12) and (tmp_path / path).is_file()
    exr = write_view_layers(tmp_path, 12, np.eye(3), rgb_format="exr", rgb=_every_array()["rgb"])
    assert exr == {"rgb": "images/00012.exr"}


def test_specs_list_each_array_then_its_companions_in_the_asked_order():
    specs = layer_specs(label_arrays(["confidence", "rgb", "depth"]), "exr", {"depth": {"source": "median"}})
    assert list(specs) == ["confidence", "valid", "rgb", "depth", "depth_png"]
    assert specs["rgb"]["files"] == "images/{index:05d}.exr" and specs["depth"]["source"] == "median"
    assert "source" not in specs["depth_png"] and "source" not in LAYERS["depth"]  # notes go to a copy
    assert len({w.files for w in LAYER_WRITERS}) == len(LAYER_WRITERS)  # no two layers share a file


def test_documented_encodings(tmp_path):
    depth = np.array([[0.0, 1.2345, 65.535, 70.0]])
    normals = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], np.float32)
    rgb = np.full((1, 4, 3), 1.0 + 1e-7, np.float32)  # above 1 by float rounding only: written as 255
    write_view_layers(tmp_path, 0, np.eye(3), rgb=rgb, depth=depth, normals=normals, mask=depth > 0)
    assert iio.imread(tmp_path / "depth/00000.png").tolist() == [[0, 1234, 65535, 0]]  # 0 beyond 65.535 units
    np.testing.assert_array_equal(np.load(tmp_path / "depth/00000.npy"), depth.astype(np.float32))
    preview = [[0, 0, 0], [128, 128, 0], [255, 128, 128], [128, 255, 128]]  # camera frame, (n + 1) / 2
    assert iio.imread(tmp_path / "normals/00000.png")[0].tolist() == preview
    assert iio.imread(tmp_path / "masks/00000.png").tolist() == [[0, 255, 255, 255]]
    assert (iio.imread(tmp_path / "images/00000.png") == 255).all()


@pytest.mark.parametrize(
    ("layer", "value", "problem"),
    [
        ("rgb", lambda a: a["rgb"] + 0.01, r"values outside \[0, 1\]"),
        ("rgb", lambda a: np.where(a["mask"][..., None], np.nan, a["rgb"]), "NaN or infinite"),
        ("depth", lambda a: np.where(a["mask"], np.inf, a["depth"]), "NaN or infinite"),
        ("range", lambda a: -a["range"], r"values outside \[0, inf\]"),
        ("confidence", lambda a: a["confidence"] * 1.5, r"values outside \[0, 1\]"),
        ("normal_confidence", lambda a: a["normal_confidence"] - 0.5, r"values outside \[0, 1\]"),
        ("normals", lambda a: a["normals"] * 0.5, "not unit length"),
        ("mask", lambda a: a["mask"].astype(np.float32), "expected a boolean image"),
        ("object_id", lambda a: a["object_id"] + 70_000, r"values outside \[0, 65535\]"),
        ("depth_modes", lambda a: np.full_like(a["depth_modes"], np.nan), "NaN or infinite"),
    ],
)
def test_a_value_out_of_range_names_layer_and_file_and_writes_nothing(tmp_path, layer, value, problem):
    arrays = _every_array()
    arrays[layer] = value(arrays)
    path = LAYERS[layer]["files"].format(index=3)
    with pytest.raises(NerfDataError, match=rf"layer {layer} \(.*{path}\): .*{problem}"):
        write_view_layers(tmp_path, 3, np.eye(3), **arrays)
    assert not any(tmp_path.iterdir())


def test_an_unknown_array_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no layer encodes"):
        write_view_layers(tmp_path, 0, np.eye(3), albedo=np.zeros((H, W, 3)))
