"""Labels derived from renders and fields: per-pixel labels, meshes, correspondences, pose targets."""
