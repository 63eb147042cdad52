"""Vertex colours of an extracted mesh.

Each vertex's colour is the field's radiance there, seen from outside along the vertex's negative
normal; :func:`~nerfdata.labels.mesh.extract.extract_mesh` stores it as 8-bit RGB exactly as
rendered images store it.
"""

import numpy as np
import torch
from jaxtyping import Float

from nerfdata.fields.base import Field

__all__ = ["vertex_colors"]


@torch.no_grad()
def vertex_colors(
    field_: Field, vertices: Float[np.ndarray, "n 3"], normals: Float[np.ndarray, "n 3"], chunk_points: int = 1 << 18
) -> Float[np.ndarray, "n 3"]:
    """The field's radiance at ``vertices`` seen from outside, looking along ``-normals`` (outward unit normals).

    Example:
        >>> from nerfdata.fields.analytic import AnalyticField, Material, Sphere
        >>> sphere = Sphere((0.0, 0.0, 0.0), 0.5, Material((0.2, 0.4, 0.6), "solid"))
        >>> field = AnalyticField([sphere], [[-1] * 3, [1] * 3])
        >>> vertex_colors(field, np.array([[0.5, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])).round(2).tolist()
        [[0.2, 0.4, 0.6]]
    """
    device = field_.aabb.device
    positions = torch.tensor(np.asarray(vertices), dtype=torch.float32, device=device)
    outward = torch.tensor(np.asarray(normals), dtype=torch.float32, device=device)
    directions = -torch.nn.functional.normalize(outward, dim=-1)
    chunks = zip(positions.split(chunk_points), directions.split(chunk_points), strict=True)
    parts = [field_.query(p, d)[1] for p, d in chunks]
    rgb = torch.cat(parts) if parts else torch.zeros(0, 3, device=device)
    return rgb.clamp(0.0, 1.0).double().cpu().numpy()
