"""nerfdata: turn trained radiance fields into labelled synthetic datasets.

The flow (see DESIGN.md): a checkpoint is loaded into a :class:`Field`; cameras are sampled; the
renderer marches rays through the field and composites per-ray outputs; writers put every layer on
disk. Everything the CLI does is also a call here, e.g.::

    from nerfdata import Camera, Intrinsics, RenderOptions, load_field, render_image
    loaded = load_field("scenes/analytic_demo")
    image = render_image(loaded.field, camera, RenderOptions(), loaded.occupancy)
"""

from nerfdata.cameras import (
    Camera,
    Intrinsics,
    Rays,
    camera_rays,
    invert_rigid,
    look_at_c2w_opengl,
    opencv_to_opengl,
    opengl_to_opencv,
    validate_c2w,
)
from nerfdata.encoders import HashGridConfig, HashGridEncoder, hash_grid_encode, hash_grid_encode_reference
from nerfdata.errors import CheckpointError, ConfigError, NerfDataError, PoseError
from nerfdata.fields import (
    AnalyticField,
    Field,
    LoadedField,
    NGPField,
    NGPFieldConfig,
    OccupancyGrid,
    load_field,
    occupancy_grid_from_density,
    save_field,
)
from nerfdata.render import ImageOutputs, RayOutputs, RenderOptions, render_image, render_rays, render_rays_reference
from nerfdata.version import __version__

__all__ = [
    "AnalyticField",
    "Camera",
    "CheckpointError",
    "ConfigError",
    "Field",
    "HashGridConfig",
    "HashGridEncoder",
    "ImageOutputs",
    "Intrinsics",
    "LoadedField",
    "NGPField",
    "NGPFieldConfig",
    "NerfDataError",
    "OccupancyGrid",
    "PoseError",
    "RayOutputs",
    "Rays",
    "RenderOptions",
    "__version__",
    "camera_rays",
    "hash_grid_encode",
    "hash_grid_encode_reference",
    "invert_rigid",
    "load_field",
    "look_at_c2w_opengl",
    "occupancy_grid_from_density",
    "opencv_to_opengl",
    "opengl_to_opencv",
    "render_image",
    "render_rays",
    "render_rays_reference",
    "save_field",
    "validate_c2w",
]
