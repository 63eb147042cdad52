"""BOP files (the BOP benchmark's scene-wise format), one writer for every job that writes them.

* :mod:`~nerfdata.writers.bop.scene`: a scene's ``rgb/``, ``depth/``, ``mask/``, ``mask_visib/`` and its
  ``scene_camera.json``, ``scene_gt.json``, ``scene_gt_info.json`` entries;
* :mod:`~nerfdata.writers.bop.models`: ``models/`` (and ``models_eval/``) with ``models_info.json``;
* :mod:`~nerfdata.writers.bop.results`: pose estimates as a BOP19 results CSV.

The objects, their models and what each view shows of them come from
:mod:`nerfdata.labels.objects`; :mod:`nerfdata.jobs.bop` wires them to these writers.
"""

from nerfdata.writers.bop.models import bop_model_name, models_info, write_bop_models
from nerfdata.writers.bop.results import BOP19_HEADER, BopEstimate, bop_results_name, write_bop_results
from nerfdata.writers.bop.scene import (
    bop_cam_K,
    bop_camera_entry,
    bop_depth_values,
    bop_gt_entry,
    bop_image_name,
    bop_mask_name,
    depth_scale_for,
    gt_info_entry,
    read_scene_gt,
    write_bop_mask,
    write_bop_scene_files,
)

__all__ = [
    "BOP19_HEADER",
    "BopEstimate",
    "bop_cam_K",
    "bop_camera_entry",
    "bop_depth_values",
    "bop_gt_entry",
    "bop_image_name",
    "bop_mask_name",
    "bop_model_name",
    "bop_results_name",
    "depth_scale_for",
    "gt_info_entry",
    "models_info",
    "read_scene_gt",
    "write_bop_mask",
    "write_bop_models",
    "write_bop_results",
    "write_bop_scene_files",
]
