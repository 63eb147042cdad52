"""``preview.png``: a contact sheet to look at before reading anything.

One row per previewed view: RGB | depth (colour-mapped, with its scale printed) | normals (camera
frame, ``(n + 1) / 2``) | confidence (colour-mapped 0..1). Depth uses one range for every row, so
rows compare.
"""

from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nerfdata.writers.images import to_uint8, write_png
from nerfdata.writers.layers import normals_preview

__all__ = ["PreviewRow", "colormap", "preview_rows", "write_contact_sheet"]

# Viridis at 10 evenly spaced positions (matplotlib's published colormap), interpolated linearly.
_VIRIDIS = np.array(
    [
        [68, 1, 84], [72, 40, 120], [62, 73, 137], [49, 104, 142], [38, 130, 142],
        [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37],
    ],
    dtype=np.float64,
) / 255.0

PreviewRow = dict[str, np.ndarray]
"""``rgb (h, w, 3)``, ``depth (h, w)``, ``normals (h, w, 3)`` (the camera-frame preview in ``[0, 1]``,
:func:`~nerfdata.writers.layers.normals_preview`), ``confidence (h, w)``; any may be missing."""


def colormap(values: np.ndarray, low: float, high: float, invalid: np.ndarray | None = None) -> np.ndarray:
    """Viridis colours ``(..., 3)`` in ``[0, 1]`` for ``values`` scaled from ``[low, high]``; black where invalid."""
    t = np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    index = np.minimum(np.floor(t).astype(int), len(_VIRIDIS) - 2)
    fraction = (t - index)[..., None]
    colors = _VIRIDIS[index] * (1 - fraction) + _VIRIDIS[index + 1] * fraction
    if invalid is not None:
        colors[invalid] = 0.0
    return colors


def _label(image: Image.Image, position: tuple[int, int], text: str) -> None:
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    box = draw.textbbox(position, text, font=font)
    draw.rectangle(box, fill=(0, 0, 0))
    draw.text(position, text, fill=(255, 255, 255), font=font)


def preview_rows(
    out: Path, views: list[dict[str, Any]], w2c_rotations: dict[int, np.ndarray], count: int
) -> list[PreviewRow]:
    """Rows of up to ``count`` complete views, evenly spread, read back from their files under ``out``.

    Args:
        views: Manifest view records (``index``, ``status``, ``files``: ``{layer: {"path": ...}}``).
        w2c_rotations: Per view index, its world-to-camera rotation (OpenCV axes), for the normals.

    Only the views of the smallest size are kept when sizes differ (a sheet has one tile size).
    """
    done = [v for v in views if v["status"] == "complete"]
    chosen = [done[i] for i in np.linspace(0, len(done) - 1, min(count, len(done))).round().astype(int)] if done else []
    rows = []
    for view in chosen:
        files, row = view["files"], {}
        if "rgb" in files and files["rgb"]["path"].endswith(".png"):
            row["rgb"] = iio.imread(out / files["rgb"]["path"]).astype(np.float64) / 255.0
        if "depth" in files:
            row["depth"] = np.load(out / files["depth"]["path"])
        if "normals" in files:
            normals = np.load(out / files["normals"]["path"])
            row["normals"] = normals_preview(normals, w2c_rotations[view["index"]])
        if "confidence" in files:
            row["confidence"] = np.load(out / files["confidence"]["path"])
        rows.append(row)
    sizes = {next(iter(r.values())).shape[:2] for r in rows if r}
    return rows if len(sizes) == 1 else [r for r in rows if r and next(iter(r.values())).shape[:2] == min(sizes)]


def write_contact_sheet(path: str | Path, rows: list[PreviewRow], depth_unit: str = "units") -> None:
    """Write the contact sheet of ``rows`` (all of one size) to ``path`` (atomically)."""
    h, w = next(iter(rows[0].values())).shape[:2]
    depths = np.concatenate([r["depth"][r["depth"] > 0] for r in rows if "depth" in r] or [np.zeros(1)])
    low, high = (float(np.percentile(depths, 1)), float(np.percentile(depths, 99))) if depths.size > 1 else (0.0, 1.0)
    columns = [("rgb", "rgb"), ("depth", f"depth {low:.3g}-{high:.3g} {depth_unit}"), ("normals", "normals"), ("confidence", "confidence 0-1")]
    columns = [(key, title) for key, title in columns if any(key in r for r in rows)]
    sheet = np.zeros((h * len(rows), w * len(columns), 3))
    for i, row in enumerate(rows):
        for j, (key, _) in enumerate(columns):
            if key not in row:
                continue
            value = row[key]
            if key == "depth":
                tile = colormap(value, low, high, invalid=value <= 0)
            elif key == "confidence":
                tile = colormap(value, 0.0, 1.0)
            else:
                tile = value
            sheet[i * h : (i + 1) * h, j * w : (j + 1) * w] = tile
    image = Image.fromarray(to_uint8(sheet))
    for j, (_, title) in enumerate(columns):
        _label(image, (j * w + 2, 2), title)
    write_png(path, np.asarray(image))
