"""``ns-train`` on a machine without network: ``python -m nerfdata.fields.nerfstudio.train METHOD ...``.

Takes exactly ``ns-train``'s arguments. The only difference: nerfstudio models build torchmetrics'
LPIPS metric, which downloads AlexNet weights when it is created; here it is replaced by a metric
that reports NaN (see :func:`nerfdata.fields.nerfstudio.model.without_lpips_download`), so training
runs offline. LPIPS is an evaluation figure only; training and the saved weights are unchanged.
Needs the ``[nerfstudio]`` extra.
"""

from nerfdata.fields.nerfstudio.model import without_lpips_download

__all__: list[str] = []

if __name__ == "__main__":
    from nerfstudio.scripts.train import entrypoint

    with without_lpips_download():
        entrypoint()
