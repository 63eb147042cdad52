"""load_field: a loader chosen by what the path is; nerfstudio imported only for a nerfstudio run."""

import subprocess
import sys

import pytest

from nerfdata.errors import CheckpointError
from nerfdata.fields.checkpoint import save_field
from nerfdata.fields.loading import load_field


def test_anything_but_a_nerfstudio_config_is_a_nerfdata_checkpoint(scene, tmp_path):
    json_path = save_field(scene, tmp_path / "ckpt")
    for path in (json_path.parent, json_path.with_suffix(".safetensors")):
        loaded = load_field(path)
        assert loaded.json_path == json_path and loaded.field.primitives == scene.primitives


@pytest.mark.parametrize("suffix", [".yml", ".yaml"])
def test_a_nerfstudio_config_without_the_extra_is_refused_clearly(tmp_path, monkeypatch, suffix):
    config = tmp_path / f"config{suffix}"
    config.write_text("method_name: nerfacto\n")
    monkeypatch.setitem(sys.modules, "nerfstudio", None)  # as without the [nerfstudio] extra: import fails
    expected = r"config\.ya?ml: nerfstudio run configs are not supported without the \[nerfstudio\] extra"
    with pytest.raises(CheckpointError, match=expected) as error:
        load_field(config)
    assert "\n" not in str(error.value)


def test_the_nerfstudio_package_imports_without_nerfstudio():
    """Importing nerfdata's nerfstudio modules (as a walk of the package does) pulls in no nerfstudio."""
    modules = ", ".join(
        f"nerfdata.fields.nerfstudio.{name}"
        for name in ("checkpoint", "config", "field", "frame", "model", "render", "tcnn", "train")
    )
    heavy = "{'nerfstudio', 'torchvision'}"
    code = f"import sys, nerfdata.fields.loading, {modules}; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
