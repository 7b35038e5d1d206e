"""``Image``: a picture logged with a run, stored as a PNG blob (Pillow needed only here)."""
from __future__ import annotations

import io
from typing import Any

from .settings import DISTRIBUTION


class Image:
    """An image from a torch tensor, a numpy array or a PIL image, with an optional caption.

    Tensors shaped (C, H, W) or (H, W) with values in [0, 1] (floats) or [0, 255] (ints) work.
    """

    def __init__(self, data: Any, caption: str | None = None) -> None:
        self.caption = None if caption is None else str(caption)
        self.png = _to_png(data)
        from PIL import Image as PILImage  # Pillow is optional (the [images] extra): imported on use

        with PILImage.open(io.BytesIO(self.png)) as img:
            self.width, self.height = img.size

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height}, caption={self.caption!r})"


def _to_png(data: Any) -> bytes:
    try:
        from PIL import Image as PILImage  # optional, as above
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"registry.Image needs Pillow: pip install '{DISTRIBUTION}[images]'") from None
    import numpy as np  # needed only for arrays and tensors, and not a core dependency

    if isinstance(data, PILImage.Image):
        img = data
    else:
        array = data.detach().cpu().numpy() if hasattr(data, "detach") else np.asarray(data)
        while array.ndim > 3 and array.shape[0] == 1:  # e.g. a (1, 1, 28, 28) batch of one
            array = array[0]
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            array = np.transpose(array, (1, 2, 0))  # CHW -> HWC
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.dtype.kind == "f":
            array = np.clip(array * (255.0 if array.max(initial=0) <= 1.0 else 1.0), 0, 255)
        img = PILImage.fromarray(array.astype(np.uint8))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
