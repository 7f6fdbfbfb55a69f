"""cpu_preprocessing: every batch is augmented on the training thread, per sample, in Python.

Injected (``--variant bottleneck``): after the batch arrives and before the forward, each image
goes through a hand-written NumPy pipeline (reflect-pad and random crop, flip, brightness and
contrast jitter, a 5x5 box blur as 25 shifted adds, per-channel normalisation), one sample at a
time. The DataLoader itself is fast: the batches are slices of tensors in memory.

Clean twin (``--variant clean``): the same loop without the per-sample augmentation.

The session watches the model (``session.watch_model(model)``), so every step records
``pre_forward_us``, the time from the batch's arrival to the model's first forward call. What a
user sees: ``pre_forward_us`` about half of each step's ``duration_us`` (near 0 in the twin) while
``dataloader_wait_us`` stays small in both, and the advisor's ``cpu_preprocessing`` finding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from examples.bottlenecks import common

CPU = common.Sizes(batch=64, features=3 * 32 * 32, width=512, depth=2)
CUDA = common.Sizes(batch=256, features=3 * 32 * 32, width=4096, depth=3)
IMAGE = (3, 32, 32)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image (C, H, W) through the kind of transform chain written by hand per sample."""
    _, height, width = image.shape
    padded = np.pad(image, ((0, 0), (4, 4), (4, 4)), mode="reflect")
    top, left = rng.integers(0, 9, size=2)
    out = padded[:, top : top + height, left : left + width]
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
    out = out * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
    edges = np.pad(out, ((0, 0), (2, 2), (2, 2)), mode="edge")
    blurred = np.zeros_like(out)
    for dy in range(5):
        for dx in range(5):
            blurred += edges[:, dy : dy + height, dx : dx + width]
    blurred /= 25
    mean = blurred.mean(axis=(1, 2), keepdims=True)
    normalised: np.ndarray = (blurred - mean) / (blurred.std(axis=(1, 2), keepdims=True) + 1e-5)
    return normalised


class PerSampleAugmentation:
    """The injected work: ``augment`` each image of the batch, one at a time."""

    def __init__(self, pinned: bool) -> None:
        self.rng = np.random.default_rng(0)
        self.pinned = pinned  # on a GPU the result is copied from pinned memory

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> common.Batch:
        out = torch.empty(x.shape, dtype=x.dtype, pin_memory=self.pinned)
        images, result = x.numpy(), out.numpy()
        for index in range(len(images)):
            result[index] = augment(images[index], self.rng)
        return out, y


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("cpu_preprocessing", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    x, y = common.synthetic_classification(sizes.batch * sizes.batches, IMAGE, sizes.classes)
    if args.on_cuda:  # batches come from host memory, pinned, as from a pin_memory DataLoader
        x, y = x.pin_memory(), y.pin_memory()
    loader = common.ResidentBatches(x, y, sizes.batch)
    prepare = PerSampleAugmentation(pinned=args.on_cuda) if args.is_bottleneck else None
    model = common.model_for(sizes, args.device)
    with common.open_session(args, batch_size=sizes.batch) as session:
        session.watch_model(model)
        result = common.train(session, model, loader, args, prepare=prepare, non_blocking=True)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
