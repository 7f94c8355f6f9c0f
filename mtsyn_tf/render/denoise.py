"""Intel Open Image Denoise (``pyoidn``) on the path-traced RGB, guided by albedo + normals.

A few samples per pixel plus OIDN's ``RT`` filter give images close to a many-sample
render at a fraction of the cost (benchmarks/render_throughput.py prints the PSNR table
behind the default). The albedo and normal guides are the label pass's pixel-centre values
(one ray per pixel, see mitsuba_backend); they denoised as well as guides averaged over
the colour's jittered samples, for a fraction of the cost. Labels never go through the
denoiser.

``pyoidn`` is optional (the ``[render]`` extra installs it); without it
:func:`make_denoiser` logs one warning and returns None, and the renderer keeps the
noisy image.
"""

from __future__ import annotations

import functools

import numpy as np
from absl import logging

QUALITIES = ("fast", "balanced", "high")


@functools.cache
def pyoidn_available() -> bool:
    try:
        import pyoidn  # noqa: F401
    except ImportError:
        return False
    return True


class Denoiser:
    """One OIDN CPU device + ``RT`` filter, reused for every image of a process.

    ``threads`` pins OIDN's thread pool (its default is every core, which oversubscribes
    when several render workers share a machine).
    """

    def __init__(self, quality: str = "balanced", threads: int = 1):
        if quality not in QUALITIES:
            raise ValueError(f"denoise quality must be one of {QUALITIES}. Received: {quality!r}")
        import pyoidn

        self.quality = quality
        self._pyoidn = pyoidn
        self._device = pyoidn.Device(pyoidn.OIDN_DEVICE_TYPE_CPU)
        self._device.set_int("numThreads", int(threads))
        self._device.commit()
        self._filter = pyoidn.Filter(self._device, pyoidn.OIDN_FILTER_TYPE_RT)
        self._check("device/filter creation")

    def _check(self, what: str) -> None:
        error = self._device.get_error()
        if error:
            raise RuntimeError(f"Open Image Denoise failed during {what}: {error}")

    def __call__(self, color: np.ndarray, albedo: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Denoised linear HDR ``color`` [H, W, 3] float32."""
        p = self._pyoidn
        color = np.ascontiguousarray(np.nan_to_num(color, nan=0.0, posinf=0.0), np.float32)
        albedo = np.ascontiguousarray(np.clip(albedo, 0.0, 1.0), np.float32)
        normal = np.ascontiguousarray(np.clip(normal, -1.0, 1.0), np.float32)
        output = np.empty_like(color)
        for name, image in (
            (p.OIDN_IMAGE_COLOR, color),
            (p.OIDN_IMAGE_ALBEDO, albedo),
            (p.OIDN_IMAGE_NORMAL, normal),
            (p.OIDN_IMAGE_OUTPUT, output),
        ):
            self._filter.set_image(name, image, p.OIDN_FORMAT_FLOAT3)
        self._filter.set_bool("hdr", True)
        self._filter.set_quality(
            {
                "fast": p.OIDN_QUALITY_FAST,
                "balanced": p.OIDN_QUALITY_BALANCED,
                "high": p.OIDN_QUALITY_HIGH,
            }[self.quality]
        )
        self._filter.commit()
        self._filter.execute()
        self._check("filtering")
        return output


_DENOISERS: dict = {}


def make_denoiser(quality: str, threads: int) -> Denoiser | None:
    """The process's denoiser for ``(quality, threads)``, or None (logged) without pyoidn."""
    if quality not in QUALITIES:
        raise ValueError(f"denoise quality must be one of {QUALITIES}. Received: {quality!r}")
    if not pyoidn_available():
        if "warned" not in _DENOISERS:
            _DENOISERS["warned"] = True
            logging.warning(
                "pyoidn is not installed: rendering WITHOUT denoising (images keep their "
                "Monte Carlo noise). `pip install pyoidn` (the [render] extra) enables it; "
                "--denoise=false silences this."
            )
        return None
    key = (quality, int(threads))
    if key not in _DENOISERS:
        _DENOISERS[key] = Denoiser(quality, threads)
    return _DENOISERS[key]
