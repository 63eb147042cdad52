"""Input encodings: the multiresolution hash grid (several backends, one layout) and view-direction SH."""

from nerfdata.encoders.fused import fused_available, hash_grid_encode_fused
from nerfdata.encoders.hashgrid import (
    HashGridConfig,
    HashGridEncoder,
    hash_grid_encode,
    hash_grid_encode_reference,
    tcnn_available,
    triton_available,
)
from nerfdata.encoders.sh import sh_encode

__all__ = [
    "HashGridConfig",
    "HashGridEncoder",
    "fused_available",
    "hash_grid_encode",
    "hash_grid_encode_fused",
    "hash_grid_encode_reference",
    "sh_encode",
    "tcnn_available",
    "triton_available",
]
