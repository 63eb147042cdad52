"""Checkpoints: save/load gives identical renders; every kind of corruption is a clear error."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nerfdata.atomic import sha256_file
from nerfdata.errors import CheckpointError
from nerfdata.fields.base import Field
from nerfdata.fields.checkpoint import FIELD_TYPES, field_checksum, load_checkpoint, save_field
from nerfdata.fields.occupancy import occupancy_grid_from_density
from nerfdata.render.renderer import RenderOptions, render_image
from tests.test_ngp import make_field


@pytest.fixture
def ngp_checkpoint(tmp_path):
    field = make_field()
    occupancy = occupancy_grid_from_density(field.density, field.aabb, resolution=16, opacity_threshold=0.0)
    json_path = save_field(field, tmp_path / "ckpt", occupancy, metadata={"note": "test"})
    return field, occupancy, json_path


def test_round_trip_gives_identical_renders(ngp_checkpoint, cameras):
    field, occupancy, json_path = ngp_checkpoint
    loaded = load_checkpoint(json_path.parent)
    assert loaded.metadata == {"note": "test"} and loaded.sha256 == field_checksum(json.loads(json_path.read_text()))
    assert torch.equal(loaded.occupancy.bits, occupancy.bits) and loaded.occupancy.resolution == 16
    assert not any(p.requires_grad for p in loaded.field.parameters()) and not loaded.field.training
    options = RenderOptions(num_steps=256)
    camera = cameras[0]
    expected = render_image(field, camera, options, occupancy)
    actual = render_image(loaded.field, camera, options, loaded.occupancy)
    assert torch.equal(expected.rgb, actual.rgb) and torch.equal(expected.depth_median, actual.depth_median)


@pytest.mark.parametrize("which", ["folder", "json", "safetensors"])
def test_every_path_form_loads(ngp_checkpoint, which):
    _, _, json_path = ngp_checkpoint
    path = {"folder": json_path.parent, "json": json_path, "safetensors": json_path.with_suffix(".safetensors")}[which]
    assert load_checkpoint(path).json_path == json_path


SHIPPED = sorted((Path(__file__).parents[1] / "scenes").glob("*/field.json"))


@pytest.mark.parametrize("json_path", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_every_shipped_checkpoint_loads_and_describes_itself_as_stored(json_path):
    loaded = load_checkpoint(json_path)
    stored = json.loads(json_path.read_text())["config"]
    assert json.dumps(loaded.field.config_dict()) == json.dumps(stored)  # same keys, order and values


def test_analytic_round_trip(scene, tmp_path):
    loaded = load_checkpoint(save_field(scene, tmp_path / "analytic.safetensors"))
    assert loaded.field.primitives == scene.primitives and loaded.occupancy is None


def test_truncated_tensors_file(ngp_checkpoint):
    tensors = ngp_checkpoint[2].with_suffix(".safetensors")
    tensors.write_bytes(tensors.read_bytes()[: tensors.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"field\.safetensors: truncated or corrupt"):
        load_checkpoint(tensors)


def test_tampered_tensors_file(ngp_checkpoint):
    tensors = ngp_checkpoint[2].with_suffix(".safetensors")
    data = bytearray(tensors.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside a weight: still a valid safetensors file
    tensors.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(tensors)


def test_checksum_mismatch_in_the_description(ngp_checkpoint):
    json_path = ngp_checkpoint[2]
    description = json.loads(json_path.read_text())
    description["sha256"] = "0" * 64
    json_path.write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(json_path)


def test_missing_and_unexpected_tensors(ngp_checkpoint):
    field, _, json_path = ngp_checkpoint
    tensors_path = json_path.with_suffix(".safetensors")
    state = {k: v.contiguous() for k, v in field.state_dict().items()}
    state.pop("color_mlp.0.weight")
    state["extra.weight"] = torch.zeros(2)
    save_file(state, str(tensors_path))
    description = json.loads(json_path.read_text())
    description["sha256"] = sha256_file(tensors_path)  # consistent checksum: the content is what is wrong
    json_path.write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match=(
        r"field\.safetensors: does not match the field described in its \.json: "
        r"missing tensors \['color_mlp.0.weight'\]; unexpected tensors \['extra.weight'\]"
    )):
        load_checkpoint(json_path)


def test_shape_mismatch(ngp_checkpoint):
    json_path = ngp_checkpoint[2]
    description = json.loads(json_path.read_text())
    description["config"]["hash_grid"]["log2_hashmap_size"] = 13  # the tensors hold a 2^12 table
    json_path.write_text(json.dumps(description))
    expected = r"field\.safetensors: tensor 'encoder.params' has shape \(\d+,\), the field described in"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(json_path)


def test_missing_files_and_bad_descriptions(ngp_checkpoint, tmp_path):
    json_path = ngp_checkpoint[2]
    with pytest.raises(CheckpointError, match="nowhere: no such file or folder"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"field\.json: checkpoint description not found"):
        load_checkpoint(tmp_path / "empty")
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")
    copy = tmp_path / "copy"
    shutil.copytree(json_path.parent, copy)
    (copy / "field.safetensors").unlink()
    with pytest.raises(CheckpointError, match="tensors file not found"):
        load_checkpoint(copy)
    (copy / "field.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable checkpoint description"):
        load_checkpoint(copy)
    (copy / "field.json").write_text(json.dumps({"format": "nerfdata-field", "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        load_checkpoint(copy)
    description = json.loads(json_path.read_text()) | {"field_type": "mystery"}
    (copy / "field.json").write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match="unknown field type 'mystery'"):
        load_checkpoint(copy)


def test_a_nerfstudio_config_is_no_nerfdata_checkpoint(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("method_name: nerfacto\n")
    with pytest.raises(CheckpointError, match=r"config\.yml: a nerfstudio run config holds no nerfdata"):
        load_checkpoint(config)


class ForeignField(Field):
    """A field nerfdata's checkpoints cannot rebuild (like a nerfstudio run): not in FIELD_TYPES."""

    field_type = "foreign"

    def density(self, positions):
        return positions.new_zeros(len(positions))

    def query(self, positions, directions):
        return self.density(positions), positions.new_zeros(len(positions), 3)

    def config_dict(self):
        return {}

    @classmethod
    def from_config_dict(cls, config):
        return cls(torch.tensor([[-1.0] * 3, [1.0] * 3]))


def test_a_field_that_cannot_be_loaded_back_is_not_saved(tmp_path):
    assert "foreign" not in FIELD_TYPES
    expected = r"cannot save a ForeignField \(field type 'foreign'\): a nerfdata checkpoint holds NGPField"
    with pytest.raises(CheckpointError, match=expected) as error:
        save_field(ForeignField(torch.tensor([[-1.0] * 3, [1.0] * 3])), tmp_path / "ckpt")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "ckpt").exists()  # refused before anything is written


def test_saving_is_atomic(ngp_checkpoint, monkeypatch):
    """A failure while writing leaves the previous checkpoint loadable and no temporary files."""
    field, _, json_path = ngp_checkpoint
    import nerfdata.fields.checkpoint as checkpoint

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_field(field, json_path)
    assert load_checkpoint(json_path).sha256 == field_checksum(json.loads(json_path.read_text()))
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["field.json", "field.safetensors"]


@pytest.mark.parametrize("crash_at", ["rename", "final_description"])
def test_a_save_interrupted_between_phases_still_loads(ngp_checkpoint, monkeypatch, crash_at):
    """Crashing after the description points at the staged tensors, at either later step, loses nothing."""
    import nerfdata.fields.checkpoint as checkpoint

    field, _, json_path = ngp_checkpoint
    with torch.no_grad():
        field.encoder.params.add_(1.0)  # new weights, so the new save differs from the old one
    real_write = checkpoint.write_json_atomic
    writes = []

    def write_then_maybe_crash(path, value):
        writes.append(value["tensors_file"])
        if crash_at == "final_description" and len(writes) == 2:
            raise KeyboardInterrupt
        real_write(path, value)

    real_replace = checkpoint.os.replace

    def crash_on_rename(source, target):
        if str(source).endswith("field.next.safetensors"):  # the rename of the committed, staged tensors
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(checkpoint, "write_json_atomic", write_then_maybe_crash)
    if crash_at == "rename":
        monkeypatch.setattr(checkpoint.os, "replace", crash_on_rename)
    with pytest.raises(KeyboardInterrupt):
        save_field(field, json_path)
    monkeypatch.undo()
    loaded = load_checkpoint(json_path)
    assert torch.equal(loaded.field.encoder.params, field.encoder.params)  # the new weights, complete


def test_float16_storage_halves_the_file(ngp_checkpoint, tmp_path):
    field, occupancy, json_path = ngp_checkpoint
    half = save_field(field, tmp_path / "half", occupancy, storage_dtype=torch.float16)
    assert half.with_suffix(".safetensors").stat().st_size < 0.6 * json_path.with_suffix(".safetensors").stat().st_size
    loaded = load_checkpoint(half).field
    torch.testing.assert_close(loaded.encoder.params, field.encoder.params.half().float(), rtol=0, atol=0)
    assert loaded.encoder.params.dtype == torch.float32


def test_the_same_field_saved_twice_gives_the_same_bytes(ngp_checkpoint, tmp_path):
    """A checksum names a field: saving it again must not make it look new (safetensors writes several
    metadata keys in a random order, so a save with two keys differed about half the time)."""
    field, occupancy, _ = ngp_checkpoint
    paths = [save_field(field, tmp_path / f"copy{i}", occupancy).with_suffix(".safetensors") for i in range(8)]
    sums = {sha256_file(path) for path in paths}
    assert len(sums) == 1
