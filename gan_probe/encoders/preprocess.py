"""The reference tools' image preprocessing, step for step, on uint8 RGB images.

- dgm-eval (FD-DINOv2): ``torchvision.transforms.Resize((224, 224), BICUBIC)`` on the PIL RGB
  image (PIL's antialiased bicubic, uint8 in and out), ``ToTensor`` (/255), ``Normalize`` with the
  ImageNet mean and std. Not aspect-preserving: every image is squashed to 224 x 224.
- CMMD (google-research ``cmmd/io_util.py``, sayakpaul/cmmd-pytorch): crop the largest central
  square (``top = (h - l) // 2``, ``left = (w - l) // 2``), PIL bicubic resize of that uint8 crop to
  336 x 336, /255, then CLIP's mean and std (the 336 -> 336 bicubic resize in their embedding code
  is the identity).
"""

from __future__ import annotations

import numpy as np
import torch

from gan_probe.errors import GanProbeError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def as_hwc_uint8(images: torch.Tensor | list[torch.Tensor]) -> list[np.ndarray]:
    """A uint8 batch B x C x H x W (or a list of C x H x W, sizes may differ), C = 1 or 3 -> a list of
    H x W x 3 uint8 arrays (grayscale repeated, as PIL's ``convert("RGB")``)."""
    items = list(images) if isinstance(images, (list, tuple)) else None
    if items is None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise GanProbeError("images must be a uint8 B x C x H x W tensor or a list of C x H x W tensors",
                                param="images")
        items = list(images)
    out = []
    for im in items:
        if not isinstance(im, torch.Tensor) or im.dtype != torch.uint8 or im.dim() != 3 or im.shape[0] not in (1, 3):
            got = f"{im.dtype} {tuple(im.shape)}" if isinstance(im, torch.Tensor) else type(im).__name__
            raise GanProbeError(f"images must be uint8 RGB (or grayscale) C x H x W, got {got}", param="images")
        a = im.detach().cpu().permute(1, 2, 0).numpy()
        out.append(np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a))
    return out


def pil_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    """PIL ``Image.resize((size, size), BICUBIC)`` of an H x W x 3 uint8 array (antialiased; uint8 out)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), resample=Image.BICUBIC))


def center_square(image: np.ndarray) -> np.ndarray:
    """The largest central square, cropped as the CMMD reference does."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def to_normalized_tensor(images: list[np.ndarray], mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Same-size H x W x 3 uint8 arrays -> B x 3 x H x W float32: /255, then (x - mean) / std."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def dgm_eval_preprocess(images, size: int = 224) -> torch.Tensor:
    """dgm-eval's DINOv2 input: PIL bicubic to size x size, /255, ImageNet mean/std."""
    return to_normalized_tensor([pil_bicubic(a, size) for a in as_hwc_uint8(images)], IMAGENET_MEAN, IMAGENET_STD)


def cmmd_preprocess(images, size: int = 336) -> torch.Tensor:
    """The CMMD reference's CLIP input: central square crop, PIL bicubic to size x size, /255, CLIP mean/std."""
    return to_normalized_tensor([pil_bicubic(center_square(a), size) for a in as_hwc_uint8(images)],
                                CLIP_MEAN, CLIP_STD)
