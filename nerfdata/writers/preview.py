"""``preview.png``: a contact sheet to look at before reading anything.

One row per previewed view, labelled with its view index (and its sampler's label), spread over the
job's views: RGB | depth (colour-mapped, one range for every row, with a colour bar giving that range
and its units) | normals (camera frame, OpenCV axes, as ``(n + 1) / 2``) | confidence (colour-mapped
0..1, with its colour bar). Titles sit in a band above the tiles, colour bars and legends in a band
below them; small views are enlarged (nearest neighbour) and large ones reduced so that the text
stays readable.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nerfdata.writers.images import to_uint8, write_png
from nerfdata.writers.layers import normals_preview

__all__ = [
    "PreviewRow",
    "SheetLayout",
    "colormap",
    "depth_unit",
    "preview_rows",
    "sheet_layout",
    "write_contact_sheet",
]

# Viridis at 10 evenly spaced positions (matplotlib's published colormap), interpolated linearly.
_VIRIDIS = (
    np.array(
        [
            [68, 1, 84],
            [72, 40, 120],
            [62, 73, 137],
            [49, 104, 142],
            [38, 130, 142],
            [31, 158, 137],
            [53, 183, 121],
            [110, 206, 88],
            [181, 222, 43],
            [253, 231, 37],
        ],
        dtype=np.float64,
    )
    / 255.0
)

BACKGROUND = (40, 40, 40)
"""The sheet's colour around the tiles (RGB renders have a white background: they stand out)."""
_TEXT, _SUBTEXT = (240, 240, 240), (175, 175, 175)
_TILE_WIDTH = (192, 384)
"""Tiles narrower than the first are enlarged by a whole factor, wider than the second reduced."""


@dataclass
class PreviewRow:
    """One view of the sheet: its index in the job, its label, and its layers.

    ``layers``: ``rgb (h, w, 3)``, ``depth (h, w)``, ``normals (h, w, 3)`` (the camera-frame preview
    in ``[0, 1]``, :func:`~nerfdata.writers.layers.normals_preview`), ``confidence (h, w)``; any may
    be missing.
    """

    index: int
    label: str
    layers: dict[str, np.ndarray]


def colormap(values: np.ndarray, low: float, high: float, invalid: np.ndarray | None = None) -> np.ndarray:
    """Viridis colours ``(..., 3)`` in ``[0, 1]`` of ``values`` scaled from ``[low, high]``; black if invalid.

    Example:
        >>> colormap(np.array([0.0, 1.0]), 0.0, 1.0).round(3).tolist()
        [[0.267, 0.004, 0.329], [0.992, 0.906, 0.145]]
    """
    t = np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    index = np.minimum(np.floor(t).astype(int), len(_VIRIDIS) - 2)
    fraction = (t - index)[..., None]
    colors = _VIRIDIS[index] * (1 - fraction) + _VIRIDIS[index + 1] * fraction
    if invalid is not None:
        colors[invalid] = 0.0
    return colors


def depth_unit(meters_per_unit: float | None) -> str:
    """What the depth values are in: metres only when the field records that its units are metres.

    Example:
        >>> depth_unit(None), depth_unit(1.0), depth_unit(0.01)
        ('scene units', 'm', 'scene units (1 = 0.01 m)')
    """
    if meters_per_unit is None:
        return "scene units"
    return "m" if meters_per_unit == 1.0 else f"scene units (1 = {meters_per_unit:g} m)"


def _spread(count: int, available: int) -> list[int]:
    """``count`` positions out of ``available``, evenly spaced from the first (24 views, 4 rows: 0 6 12 18):
    on an orbit the rows are a quarter turn apart, not the first and last views, which look alike."""
    count = min(count, available)
    return [i * available // count for i in range(count)]


def preview_rows(
    out: Path, views: list[dict[str, Any]], w2c_rotations: dict[int, np.ndarray], count: int
) -> list[PreviewRow]:
    """Rows of up to ``count`` complete views spread over the job, read back from their files under ``out``.

    Args:
        views: Manifest view records (``index``, ``label``, ``status``, ``files``: ``{layer: {"path"}}``).
        w2c_rotations: Per view index, its world-to-camera rotation (OpenCV axes), for the normals.

    Only the views of the smallest size are kept when sizes differ (a sheet has one tile size).
    """
    done = [v for v in views if v["status"] == "complete"]
    rows = []
    for view in (done[i] for i in _spread(count, len(done))):
        files, layers = view["files"], {}
        if "rgb" in files and files["rgb"]["path"].endswith(".png"):
            layers["rgb"] = iio.imread(out / files["rgb"]["path"]).astype(np.float64) / 255.0
        if "depth" in files:
            layers["depth"] = np.load(out / files["depth"]["path"])
        if "normals" in files:
            normals = np.load(out / files["normals"]["path"])
            layers["normals"] = normals_preview(normals, w2c_rotations[view["index"]])
        if "confidence" in files:
            layers["confidence"] = np.load(out / files["confidence"]["path"])
        if layers:
            rows.append(PreviewRow(view["index"], str(view.get("label", "")), layers))
    sizes = {_size(r) for r in rows}
    return [r for r in rows if _size(r) == min(sizes)] if rows else []


def _size(row: PreviewRow) -> tuple[int, int]:
    return next(iter(row.layers.values())).shape[:2]


# ------------------------------------------------------------------------------------- layout


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


@dataclass(frozen=True)
class SheetLayout:
    """Where everything sits on the sheet, in pixels: ``(y, x)`` origins, ``(height, width)`` sizes.

    Top to bottom: a title band, the rows of tiles, a legend band (colour bars, the normals' axes).
    Left to right: the row labels, then one column per layer. Tiles are ``gap`` apart.
    """

    rows: int
    columns: int
    tile: tuple[int, int]
    """A tile's (height, width) on the sheet."""
    font_size: int
    gap: int
    line: int
    """Height of one line of text."""
    label_width: int
    title_height: int
    legend_height: int

    @property
    def size(self) -> tuple[int, int]:
        height = self.title_height + self.rows * (self.tile[0] + self.gap) + self.legend_height + self.gap
        width = self.label_width + self.columns * (self.tile[1] + self.gap) + self.gap
        return height, width

    def tile_origin(self, row: int, column: int) -> tuple[int, int]:
        return self.title_height + row * (self.tile[0] + self.gap), self.label_width + column * (
            self.tile[1] + self.gap
        )

    def title_origin(self, column: int) -> tuple[int, int]:
        return self.gap, self.tile_origin(0, column)[1]

    def legend_origin(self, column: int) -> tuple[int, int]:
        return self.tile_origin(self.rows, column)[0], self.tile_origin(0, column)[1]


def sheet_layout(view_size: tuple[int, int], rows: int, columns: int) -> SheetLayout:
    """The layout of a sheet of ``rows`` views of ``view_size`` (height, width) and ``columns`` layers.

    Example:
        >>> layout = sheet_layout((64, 64), rows=4, columns=4)
        >>> layout.tile, layout.size
        ((192, 192), (896, 850))
    """
    height, width = view_size
    low, high = _TILE_WIDTH
    tile_width = width * math.ceil(low / width) if width < low else min(width, high)
    tile = (max(1, round(height * tile_width / width)), tile_width)
    font_size = int(np.clip(tile_width // 15, 12, 22))
    line = round(1.3 * font_size)
    gap = max(4, font_size // 3)
    label_width = round(4.5 * font_size) + 2 * gap  # "view 123" and a short label, wrapped
    return SheetLayout(
        rows, columns, tile, font_size, gap, line, label_width, 2 * line + 2 * gap, 4 * line + gap
    )


# ------------------------------------------------------------------------------------- drawing


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> list[str]:
    """Greedy word wrap of ``text`` into lines at most ``width`` pixels wide (a long word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _tile(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 tile enlarged (nearest: pixels stay pixels) or reduced (box filter) to ``size``."""
    image = Image.fromarray(to_uint8(values))
    if image.size == (size[1], size[0]):
        return np.asarray(image)
    smaller = size[1] < image.size[0]
    return np.asarray(
        image.resize((size[1], size[0]), Image.Resampling.BOX if smaller else Image.Resampling.NEAREST)
    )


def _colour_bar(
    image: Image.Image, layout: SheetLayout, column: int, low: float, high: float, caption: str, font: Any
) -> None:
    """Caption, a viridis bar from ``low`` to ``high`` across the column, and three tick values under it."""
    y, x = layout.legend_origin(column)
    width = layout.tile[1]
    draw = ImageDraw.Draw(image)
    draw.text((x, y), caption, fill=_TEXT, font=font)
    top = y + layout.line + layout.gap // 2
    bar = to_uint8(colormap(np.linspace(low, high, width), low, high))
    image.paste(Image.fromarray(np.repeat(bar[None], layout.line, axis=0)), (x, top))
    for fraction, anchor in ((0.0, "la"), (0.5, "ma"), (1.0, "ra")):
        tick = x + round(fraction * (width - 1))
        draw.line([(tick, top + layout.line), (tick, top + layout.line + 3)], fill=_TEXT)
        draw.text(
            (tick, top + layout.line + 4),
            f"{low + fraction * (high - low):.3g}",
            fill=_TEXT,
            font=font,
            anchor=anchor,
        )


def write_contact_sheet(path: str | Path, rows: list[PreviewRow], depth_units: str = "scene units") -> None:
    """Write the contact sheet of ``rows`` (all of one size) to ``path`` (atomically).

    ``depth_units``: what the depth values are in (:func:`depth_unit`), printed by the colour bar.
    """
    depths = np.concatenate(
        [r.layers["depth"][r.layers["depth"] > 0] for r in rows if "depth" in r.layers] or [np.zeros(1)]
    )
    low, high = (
        (float(np.percentile(depths, 1)), float(np.percentile(depths, 99))) if depths.size > 1 else (0.0, 1.0)
    )
    titles = {
        "rgb": ("RGB", "as rendered"),
        "depth": ("depth", f"z-depth, {depth_units}"),
        "normals": ("normals", "camera frame (OpenCV)"),
        "confidence": ("confidence", "0 (none) to 1"),
    }
    columns = [key for key in titles if any(key in r.layers for r in rows)]
    layout = sheet_layout(_size(rows[0]), len(rows), len(columns))
    sheet = np.empty((*layout.size, 3), np.uint8)
    sheet[:] = BACKGROUND
    for i, row in enumerate(rows):
        for j, key in enumerate(columns):
            if key not in row.layers:
                continue
            value = row.layers[key]
            if key == "depth":
                value = colormap(value, low, high, invalid=value <= 0)
            elif key == "confidence":
                value = colormap(value, 0.0, 1.0)
            y, x = layout.tile_origin(i, j)
            sheet[y : y + layout.tile[0], x : x + layout.tile[1]] = _tile(value, layout.tile)
    image = Image.fromarray(sheet)
    draw = ImageDraw.Draw(image)
    font, small = _font(layout.font_size), _font(max(10, round(0.8 * layout.font_size)))
    for j, key in enumerate(columns):
        y, x = layout.title_origin(j)
        title, subtitle = titles[key]
        draw.text((x, y), title, fill=_TEXT, font=font)
        draw.text((x, y + layout.line), subtitle, fill=_SUBTEXT, font=small)
    for i, row in enumerate(rows):
        y, _ = layout.tile_origin(i, 0)
        draw.text((layout.gap, y), f"view {row.index}", fill=_TEXT, font=font)
        for k, text in enumerate(_wrap(draw, row.label, small, layout.label_width - 2 * layout.gap)[:3]):
            draw.text((layout.gap, y + (k + 1) * layout.line), text, fill=_SUBTEXT, font=small)
    for j, key in enumerate(columns):
        if key == "depth":
            _colour_bar(image, layout, j, low, high, f"{depth_units}; black: no surface", small)
        elif key == "confidence":
            _colour_bar(image, layout, j, 0.0, 1.0, "confidence", small)
        elif key == "normals":
            y, x = layout.legend_origin(j)
            text = "(n+1)/2 as RGB: red x right, green y down, blue z forward (away from the camera)"
            for k, part in enumerate(_wrap(draw, text, small, layout.tile[1])[:4]):
                draw.text((x, y + k * layout.line), part, fill=_TEXT, font=small)
    write_png(path, np.asarray(image))
