"""The conventions every export states: one sentence per key, each written once.

A file's writer picks the statements that apply to what it holds with :func:`conventions`, so
``manifest.json``, ``inerf/targets.json`` and ``correspondences/pairs.json`` say the same thing in the
same words wherever they describe the same convention (camera axes, pixel centres).

Example:
    >>> conventions("intrinsics")
    {'intrinsics': 'pinhole fl_x, fl_y, cx, cy in pixels; pixel centres at +0.5'}
"""

__all__ = ["BOP_CONVENTIONS", "STATEMENTS", "conventions"]

_OPENGL_AXES = "OpenGL camera axes (x right, y up, looking down -z)"
_PIXEL_CENTRES = "pixel centres at +0.5"

STATEMENTS: dict[str, str] = {
    # Rendered datasets (manifest.json).
    "world_frame": "the frame and units of the data the field was trained on",
    "transforms_json_pose": f"camera-to-world 4x4, {_OPENGL_AXES}",
    "intrinsics": f"pinhole fl_x, fl_y, cx, cy in pixels; {_PIXEL_CENTRES}",
    "depth": "z-depth along the optical axis, scene units; 0 = no surface",
    "range": "distance along the ray from the camera centre, scene units; 0 = no surface",
    "normals": "unit vectors in the world frame; PNG previews show camera-frame (OpenCV axes) normals as (n+1)/2",
    "image_pixels": "row-major, x right, y down",
    # Pose-inversion targets (inerf/targets.json).
    "poses": f"camera-to-world 4x4 (gt_c2w, init_c2w), {_OPENGL_AXES}, world frame and units of the field",
    "K": f"3x3 pinhole intrinsics in pixels, {_PIXEL_CENTRES}",
    "image": "path relative to the targets root (the folder holding inerf/)",
    "perturbation": (
        "start pose = ground truth rotated (world frame) about pivot, the point on its optical axis at the median "
        "depth it sees, then its centre shifted by trans_perturb (world units)"
    ),
    "rot_perturb_deg": "geodesic angle between the start and ground-truth rotations, degrees",
    # BOP scenes and models (inerf targets, render jobs with formats: [bop]).
    "bop_cam_K": (
        "cam_K in scene_camera.json: 3x3 pinhole intrinsics in pixels with BOP's integer pixel centres "
        "(pixel (u, v) centred at (u, v), as in OpenCV and the BOP toolkit): cx_bop = cx - 0.5, "
        "cy_bop = cy - 0.5 of nerfdata's +0.5 centres"
    ),
    "bop_pose": (
        "cam_R_m2c, cam_t_m2c in scene_gt.json: model-to-camera, OpenCV axes (x right, y down, z forward), "
        "translation in millimetres (meters_per_unit * 1000 per scene unit)"
    ),
    "bop_models": (
        "models/obj_NNNNNN.ply: the field's marching-cubes mesh cut to the object's box, in the box's frame "
        "(origin at its centre), millimetres; without named objects the whole field is object 1, its model "
        "frame the world frame"
    ),
    "bop_masks": (
        "mask/IM_INST.png: the object's model alone ray cast from the view (amodal, 0/255 uint8); "
        "mask_visib/: the pixels of mask whose ray terminates (the depth label, median by default) inside "
        "the object's box"
    ),
    "bop_depth": "depth/: uint16 PNG, z-depth in millimetres = value * depth_scale; 0 = no surface",
    # Correspondences (correspondences/pairs.json).
    "pairs": "a, b: indices of the two frames in the dataset's transforms.json frames list; matches go from a to b",
    "files": "AAAAA_BBBBB.npz with a, b zero-padded to 5 digits",
    "uv": f"pixel coordinates, x right, y down, {_PIXEL_CENTRES}",
    "rotation_deg": "angle of the relative rotation between the two cameras",
    "baseline": "distance between the camera centres, scene units",
    "overlap": "smaller of the shares of each view's surface pixels that the other sees (from rendered depth)",
}
"""Every convention statement, keyed as the exports name it."""


def conventions(*keys: str) -> dict[str, str]:
    """The statements of ``keys``, in that order (a file's ``"conventions"`` object).

    Raises:
        KeyError: a key with no statement.
    """
    return {key: STATEMENTS[key] for key in keys}


BOP_CONVENTIONS = conventions("bop_cam_K", "bop_pose", "bop_models", "bop_masks", "bop_depth")
"""What a file describing a BOP export states (targets.json, a render job's manifest)."""
