"""nerfstudio runs as nerfdata fields (the ``[nerfstudio]`` extra).

``load_nerfstudio_field("outputs/x/nerfacto/2024-01-01_000000/config.yml")`` reads a nerfstudio run
folder and returns a :class:`NerfstudioField`, which answers nerfdata's field protocol in the
frame and units of the data the model was trained on:

* **Frames** (:mod:`.frame`). nerfstudio trains in a normalised frame: its dataparser maps the
  data's points with ``x_ns = scale * (R x + t)`` (``dataparser_transforms.json``: ``transform`` =
  ``[R | t]``, ``scale``). The field maps world points into that frame before querying the model,
  and returns density per *world* unit of length (``sigma_world = scale * sigma_ns``), so renders,
  depth, normals, meshes, correspondences and poses come out in the original frame and units.
* **Loading** (:mod:`.config`, :mod:`.checkpoint`, :mod:`.model`, :mod:`.field`). With nerfstudio's
  own model code, built from ``config.yml`` without its datamanager (no training images needed):
  the scene box and the number of training images come from the checkpoint's tensors. The
  checkpoint folder is resolved beside ``config.yml`` (nerfstudio's ``relative_model_dir``), not
  from the current directory. ``config.yml`` is read with a YAML loader that constructs only
  nerfstudio's config classes, paths, enums and tuples; the checkpoint is read with
  ``torch.load(weights_only=True)``, allowing exactly the numpy scalar types nerfstudio stores in
  it. The LPIPS evaluation metric is not built (its construction downloads AlexNet weights).
* **tiny-cuda-nn checkpoints** (:mod:`.tcnn`; nerfstudio's default on a GPU) load on a CPU: hash
  grids run on nerfdata's hash grid (tiny-cuda-nn's exact layout), MLP vectors become
  ``nn.Linear`` weights and the spherical-harmonics encoding is tiny-cuda-nn's
  (:mod:`nerfdata.fields.tcnn_convert`). A key or shape that does not convert is an error; nothing
  is ever left at random initialisation.
* **PyTorch hash grids** (:mod:`.hashgrid`; what a run trained without tiny-cuda-nn stores): each
  ``HashEncoding`` runs on nerfdata's kernels in nerfstudio's layout, on its own ``hash_table``
  (the checkpoint's weights, untouched), where it gives nerfstudio's outputs on probe points.
* **Rendering** (:mod:`.render`). nerfacto is rendered by its proposal sampler;
  :func:`render_rays_nerfstudio` renders nerfdata rays that way (the model's own output, for parity
  with ``ns-render``). nerfdata's renderer samples the field on its own, which is what every
  nerfdata label does.
* **Training** (:mod:`.train`): ``python -m nerfdata.fields.nerfstudio.train`` is ``ns-train``
  without the LPIPS download.

Supported methods: nerfacto and its variants (``nerfacto-big``, ``nerfacto-huge``,
``depth-nerfacto``). Anything else (splatfacto, instant-ngp...) is a
:class:`~nerfdata.errors.CheckpointError`.
nerfstudio itself is imported only inside functions, so this package imports without it;
:func:`nerfdata.fields.loading.load_field` imports it only for a ``config.yml``.
"""

from nerfdata.fields.nerfstudio.config import read_nerfstudio_config
from nerfdata.fields.nerfstudio.field import (
    NerfstudioField,
    load_nerfstudio_field,
    load_nerfstudio_loaded_field,
)
from nerfdata.fields.nerfstudio.frame import DataparserTransform
from nerfdata.fields.nerfstudio.model import without_lpips_download
from nerfdata.fields.nerfstudio.render import render_rays_nerfstudio

__all__ = [
    "DataparserTransform",
    "NerfstudioField",
    "load_nerfstudio_field",
    "load_nerfstudio_loaded_field",
    "read_nerfstudio_config",
    "render_rays_nerfstudio",
    "without_lpips_download",
]
