"""INT8 calibration data for TensorRT: real images, resized exactly as at run time.

The network input is uint8 camera bytes, which INT8 mode leaves as they are; calibration
measures the ranges of the *internal* activations (after the in-graph normalisation). So the
calibrator feeds uint8 (N, H, W, 3) batches made by ``preprocessing.resize_image``, the same
pixels the deployed model will see. TensorRT asks for device pointers, so each batch is copied
to one device buffer that lives as long as the calibrator.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from depth_unet_ros.errors import DatasetError
from depth_unet_ros.preprocessing import resize_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
FRAME_RGB_NAMES = ("rgb.png", "rgb.jpg")  # folder-dataset frames: only these are colour images


def _evenly_spaced(count: int, limit: int) -> list[int]:
    """Up to ``limit`` indices spread over ``range(count)``: a whole sequence, not its start."""
    if count <= limit:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, limit)})


def image_files(folder: Path) -> list[Path]:
    """Colour images under ``folder``: the ``rgb.*`` of a folder dataset, else every image file
    (a folder dataset's 16-bit ``depth_mm.png`` must never be read as a colour image)."""
    frames = sorted(p for p in folder.rglob("*") if p.name in FRAME_RGB_NAMES)
    if frames:
        return frames
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def calibration_images(source: str | os.PathLike, size_hw: tuple[int, int],
                       max_images: int = 200) -> Iterator[np.ndarray]:
    """(h, w, 3) uint8 RGB images at the network size from a folder of images, a folder
    dataset, or the NYU labeled ``.mat`` (all frames, evenly spaced, at most ``max_images``)."""
    source = Path(source)
    if source.suffix.lower() == ".mat":
        from depth_unet_ros.datasets.nyu_mat import NyuLabeledDataset

        dataset = NyuLabeledDataset(source)
        for i in _evenly_spaced(len(dataset), max_images):
            yield resize_image(dataset[i].image, size_hw)
        return
    if not source.is_dir():
        raise DatasetError(f"calibration source {source} is neither a folder of images nor a .mat "
                           "file; pass --calib with a folder of typical camera images")
    files = image_files(source)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {source}; pass --calib "
                           "with a folder of typical camera images")
    for i in _evenly_spaced(len(files), max_images):
        bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if bgr is None:
            log.warning("calibration: skipping unreadable %s", files[i])
            continue
        yield resize_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size_hw)


def calibration_batches(images: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Group images into (batch_size, h, w, 3) uint8 batches; a short last batch is dropped
    (TensorRT's calibrator has one fixed batch size)."""
    group: list[np.ndarray] = []
    for image in images:
        group.append(image)
        if len(group) == batch_size:
            yield np.stack(group)
            group = []


def make_calibrator(source: str | os.PathLike, size_hw: tuple[int, int], batch_size: int = 1,
                    max_images: int = 200, cache_path: str | os.PathLike | None = None,
                    input_name: str = "image") -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` over ``calibration_images(source, ...)``.

    ``batch_size`` must equal the batch of the calibration profile's opt shape (1 for the
    profiles build_engine makes: explicit-batch networks calibrate at that shape).
    ``cache_path`` keeps the computed scales, so a rebuild skips the calibration pass.
    """
    import tensorrt as trt

    from depth_unet_ros.backends.cuda import check_cuda, import_cudart

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)  # the pybind base must be initialised
            self._batches = calibration_batches(calibration_images(source, size_hw, max_images), batch_size)
            nbytes = batch_size * size_hw[0] * size_hw[1] * 3
            self._device = check_cuda(import_cudart().cudaMalloc(nbytes))
            self._count = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                log.info("calibration: %d batches of %d images", self._count, batch_size)
                return None  # tells TensorRT the data is exhausted
            cudart = import_cudart()
            batch = np.ascontiguousarray(batch)
            check_cuda(cudart.cudaMemcpy(self._device, batch.ctypes.data, batch.nbytes,
                                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            self._count += 1
            return [int(self._device) if name == input_name else 0 for name in names]

        def read_calibration_cache(self) -> bytes | None:
            if cache_path is not None and Path(cache_path).is_file():
                return Path(cache_path).read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                from depth_unet_ros.atomic_file import atomic_write

                atomic_write(Path(cache_path), bytes(cache))

        def __del__(self) -> None:
            if getattr(self, "_device", None):
                import_cudart().cudaFree(self._device)
                self._device = None

    return EntropyCalibrator()
