"""Quality report of the shipped fields: ``python benchmarks/quality.py`` (also part of ``nerfdata bench``).

For each scene in scenes/ with a trained field: PSNR, depth error, normal error and mask IoU on the
scene's test views, against exact ground truth ray cast from its meshes.
"""

from rich.console import Console

from nerfdata.bench.quality import scene_quality
from nerfdata.bench.runner import quality_table
from nerfdata.bench.shipped import shipped_scenes

if __name__ == "__main__":
    Console(width=170).print(quality_table([scene_quality(scene) for scene in shipped_scenes()]))
