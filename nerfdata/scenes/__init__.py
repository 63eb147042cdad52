"""Ground-truth scenes: recipes of meshes, exact labels by ray casting, and their datasets."""

from nerfdata.scenes.dataset import rig_cameras, scene_cameras, write_scene_dataset
from nerfdata.scenes.recipe import SceneRecipe, load_recipe

__all__ = ["SceneRecipe", "load_recipe", "rig_cameras", "scene_cameras", "write_scene_dataset"]
