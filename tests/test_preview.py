"""preview.png: rows spread over the job, a title band above the tiles, colour bars, view labels."""

import imageio.v3 as iio
import numpy as np
import pytest

from nerfdata.writers.preview import (
    BACKGROUND,
    PreviewRow,
    _spread,
    colormap,
    depth_unit,
    preview_rows,
    sheet_layout,
    write_contact_sheet,
)


def rows_of(size: tuple[int, int], count: int = 2) -> list[PreviewRow]:
    h, w = size
    depth = np.linspace(1.0, 3.0, h * w, dtype=np.float32).reshape(h, w)
    depth[: h // 4] = 0.0  # no surface
    layers = {
        "rgb": np.full((h, w, 3), 0.9),
        "depth": depth,
        "normals": np.full((h, w, 3), 0.5),
        "confidence": np.linspace(0, 1, h * w).reshape(h, w),
    }
    return [PreviewRow(6 * i, f"orbit[{6 * i}]", layers) for i in range(count)]


def test_rows_are_spread_over_the_job(tmp_path):
    assert _spread(4, 24) == [0, 6, 12, 18]  # a quarter turn apart on an orbit, not the first and last views
    assert _spread(6, 48) == [0, 8, 16, 24, 32, 40] and _spread(4, 2) == [0, 1]
    views = []
    for i in range(8):
        np.save(tmp_path / f"{i}.npy", np.full((4, 5), i / 8, np.float32))
        status = "rejected" if i == 0 else "complete"
        views.append(
            {
                "index": i,
                "label": f"orbit[{i}]",
                "status": status,
                "files": {"confidence": {"path": f"{i}.npy"}},
            }
        )
    rows = preview_rows(tmp_path, views, {}, 2)
    assert [(r.index, r.label) for r in rows] == [
        (1, "orbit[1]"),
        (4, "orbit[4]"),
    ]  # spread over the 7 complete views
    assert rows[1].layers["confidence"][0, 0] == pytest.approx(4 / 8)


@pytest.mark.parametrize("size", [(20, 24), (256, 256), (1024, 1024)])
def test_sheet_layout_has_titles_colour_bars_and_labels(tmp_path, size):
    rows = rows_of(size)
    write_contact_sheet(tmp_path / "preview.png", rows, depth_units="m")
    sheet = iio.imread(tmp_path / "preview.png")
    layout = sheet_layout(size, rows=2, columns=4)
    assert sheet.shape == (*layout.size, 3)
    assert 192 <= layout.tile[1] <= 384 and layout.font_size >= 12  # small views enlarged, large ones reduced
    background = (sheet == BACKGROUND).all(-1)
    for column in range(4):
        y, x = layout.tile_origin(0, column)
        title = background[: layout.title_height, x : x + layout.tile[1]]
        assert (~title).sum() > 50  # text in the title band above every column...
        assert background[y - layout.gap : y, x : x + layout.tile[1]].all()  # ...which ends before the tiles
    for row in range(2):  # the view index beside each row
        y, _ = layout.tile_origin(row, 0)
        assert (~background[y : y + layout.line, : layout.label_width - layout.gap]).sum() > 20
    # The depth colour bar (column 1) runs from the colormap's first colour to its last, under the tiles.
    y, x = layout.legend_origin(1)
    bar_row = y + layout.line + layout.gap // 2 + layout.line // 2
    ends = sheet[bar_row, [x, x + layout.tile[1] - 1]].astype(int)
    expected = (colormap(np.array([0.0, 1.0]), 0.0, 1.0) * 255).round().astype(int)
    assert np.abs(ends - expected).max() <= 1
    assert (~background[y : y + layout.line, x : x + layout.tile[1]]).sum() > 50  # its caption (units)


def test_depth_units_are_metres_only_when_recorded():
    assert depth_unit(None) == "scene units" and depth_unit(1.0) == "m"
