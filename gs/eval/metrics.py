"""Image quality metrics with the 3DGS evaluation conventions pinned in code.

- :func:`psnr`: mean over images of ``20 log10(1 / sqrt(MSE))``, MSE over all pixels and
  channels of one image (upstream ``utils/image_utils.py``). Evaluation passes 8-bit quantised
  images (:func:`to_uint8` then :func:`from_uint8`, i.e. what a PNG round trip gives).
  Identical images have MSE = 0 and PSNR = +inf; we return ``inf`` (the mathematical value,
  as upstream does) rather than an invented cap. :mod:`gs.eval.evaluate` records a non-finite
  PSNR as ``null`` plus a reason, because JSON has no infinity.
- :func:`ssim`: the 3DGS definition (``utils/loss_utils.py``): 11x11 Gaussian window,
  sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, zero padding of 5 px ("same" size maps), mean over the
  SSIM map. Computed with a separable convolution (two 1-D passes, exactly equal to the 2-D
  Gaussian convolution with zero padding) on all five moment maps in one grouped call;
  differentiable, so the trainer's D-SSIM loss uses it too.
- :class:`LpipsMetric`: LPIPS with the VGG network via the ``lpips`` package, only when its
  weights are available offline (never downloads).
"""

from __future__ import annotations

import functools

import math
from pathlib import Path

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
LPIPS_NET = "vgg"


# ---------------------------------------------------------------------------- 8-bit images
def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Quantise a float image in [0, 1] to uint8 the way upstream saves PNGs
    (torchvision ``save_image``: ``x * 255 + 0.5``, clamped, truncated). Any shape."""
    return (img.detach() * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8)


def from_uint8(img: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1] (what reading the PNG back gives)."""
    return img.to(torch.float32) / 255.0


def _as_float(img: torch.Tensor) -> torch.Tensor:
    return from_uint8(img) if img.dtype == torch.uint8 else img


def _batched(img1: torch.Tensor, img2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if img1.shape != img2.shape:
        raise ValueError(f"image shapes differ: {tuple(img1.shape)} vs {tuple(img2.shape)}")
    if img1.dim() == 3:
        return img1[None], img2[None], True
    if img1.dim() == 4:
        return img1, img2, False
    raise ValueError(f"expected (C,H,W) or (B,C,H,W) images, got shape {tuple(img1.shape)}")


def _reduce(per_image: torch.Tensor, reduction: str, single: bool) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "none":
        return per_image[0] if single else per_image
    raise ValueError(f"reduction must be 'mean' or 'none', not '{reduction}'")


# ---------------------------------------------------------------------------- PSNR
def psnr(img1: torch.Tensor, img2: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """PSNR in dB of (C,H,W) or (B,C,H,W) images (float in [0,1] or uint8).

    ``reduction="mean"``: mean over images of the per-image PSNR (the 3DGS number, not the
    PSNR of the mean MSE); ``"none"``: per-image values (B,). Identical images give ``inf``.
    """
    a, b, single = _batched(_as_float(img1), _as_float(img2))
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)
    per_image = (20.0 * torch.log10(1.0 / torch.sqrt(mse))).to(torch.float32)
    return _reduce(per_image, reduction, single)


# ---------------------------------------------------------------------------- SSIM
def gaussian_kernel_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                       device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian (upstream ``gaussian(window_size, sigma)``). Cached per device:
    the training loss calls this every step, and a fresh host-to-device copy would synchronise."""
    return _gaussian_kernel_1d(size, float(sigma), torch.device(device) if device is not None else None, dtype)


@functools.lru_cache(maxsize=32)
def _gaussian_kernel_1d(size: int, sigma: float, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(device=device, dtype=dtype)


def ssim(img1: torch.Tensor, img2: torch.Tensor, reduction: str = "mean",
         window_size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """SSIM of (C,H,W) or (B,C,H,W) images in [0,1] (3DGS definition, see module docstring).

    ``reduction="mean"``: mean over the whole SSIM map of all images (the training loss,
    upstream ``size_average=True``); ``"none"``: per-image means (B,). Differentiable in both
    inputs. uint8 inputs are converted to [0,1] first.
    """
    a, b, single = _batched(_as_float(img1), _as_float(img2))
    if not a.is_floating_point():
        a, b = a.float(), b.float()
    bsz, ch, h, w = a.shape
    g = gaussian_kernel_1d(window_size, sigma, a.device, a.dtype)
    pad = window_size // 2
    # One grouped separable blur over the five maps mu1, mu2, E[x^2], E[y^2], E[xy].
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)  # (B, 5C, H, W)
    n = stack.shape[1]
    kx = g.view(1, 1, 1, window_size).expand(n, 1, 1, window_size)
    ky = g.view(1, 1, window_size, 1).expand(n, 1, window_size, 1)
    blurred = F.conv2d(stack, kx, padding=(0, pad), groups=n)
    blurred = F.conv2d(blurred, ky, padding=(pad, 0), groups=n)
    mu1, mu2, e11, e22, e12 = blurred.split(ch, dim=1)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = e11 - mu1_sq
    sigma2_sq = e22 - mu2_sq
    sigma12 = e12 - mu12
    ssim_map = ((2.0 * mu12 + SSIM_C1) * (2.0 * sigma12 + SSIM_C2)) / (
        (mu1_sq + mu2_sq + SSIM_C1) * (sigma1_sq + sigma2_sq + SSIM_C2)
    )
    if reduction == "mean":
        return ssim_map.mean()
    return _reduce(ssim_map.flatten(1).mean(1), reduction, single)


# ---------------------------------------------------------------------------- LPIPS
def _vgg16_weights_file() -> str:
    """File name torchvision gives the VGG16 ImageNet weights in the hub cache."""
    try:
        from torchvision.models import VGG16_Weights  # torchvision >= 0.13

        return Path(VGG16_Weights.IMAGENET1K_V1.url).name
    except ImportError:
        return "vgg16-397923af.pth"


class LpipsMetric:
    """LPIPS-VGG, created once (loading the network is slow), never downloading.

    Available only when the ``lpips`` package (and torchvision) import and torchvision's VGG16
    backbone weights are already in the torch hub cache (``torch.hub.get_dir()/checkpoints``);
    the linear-layer weights ship inside the ``lpips`` package. Otherwise ``available`` is
    False and ``reason`` says why; calling it then returns None.

    Inputs are images in [0,1] passed without rescaling to [-1,1] (``normalize=False``). That
    is how the 3DGS ``metrics.py`` calls ``lpipsPyTorch.lpips(x, y, net_type="vgg")``; the
    ``lpips`` package with ``net="vgg"``, ``version="0.1"`` has the same backbone layers
    (relu1_2 ... relu5_3), input scaling layer, channel normalisation and linear weights, so
    the numbers match upstream (and differ from ``lpips(normalize=True)``). Each image is
    scored alone (batch of one), as upstream does.
    """

    net = LPIPS_NET

    def __init__(self, device: str | torch.device | None = None, hub_dir: str | Path | None = None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.available = False
        self.reason: str | None = None
        self._model = None
        try:
            import lpips  # noqa: F401  (imports torchvision)
        except ImportError as e:
            missing = getattr(e, "name", None) or str(e)
            self.reason = ("lpips package not installed" if missing == "lpips"
                           else f"lpips package not importable ({e})")
            return
        hub = Path(hub_dir) if hub_dir is not None else Path(torch.hub.get_dir())
        weights = hub / "checkpoints" / _vgg16_weights_file()
        if not weights.is_file():
            self.reason = (f"VGG16 backbone weights not in the torch hub cache ({weights}); "
                           "LPIPS needs them offline")
            return
        if hub_dir is not None:
            torch.hub.set_dir(str(hub))
        try:
            model = lpips.LPIPS(net=LPIPS_NET, version="0.1", verbose=False)
        except Exception as e:  # a corrupt cache file must not kill an evaluation
            self.reason = f"could not build LPIPS-VGG: {type(e).__name__}: {e}"
            return
        self._model = model.eval().to(self.device)
        for p in self._model.parameters():
            p.requires_grad_(False)
        self.available = True

    @torch.no_grad()
    def __call__(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor | None:
        """Per-image LPIPS (B,) for (B,3,H,W) images in [0,1] (or a 0-d tensor for (3,H,W));
        None when unavailable."""
        if not self.available:
            return None
        a, b, single = _batched(_as_float(img1), _as_float(img2))
        out = torch.stack([
            self._model(a[i:i + 1].to(self.device), b[i:i + 1].to(self.device), normalize=False).flatten()[0]
            for i in range(a.shape[0])
        ]).float().cpu()
        return out[0] if single else out


def finite_or_none(x: float) -> float | None:
    """A JSON-safe number: None for inf/nan."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


__all__ = [
    "LPIPS_NET", "LpipsMetric", "finite_or_none", "from_uint8", "gaussian_kernel_1d", "psnr",
    "ssim", "to_uint8",
]
