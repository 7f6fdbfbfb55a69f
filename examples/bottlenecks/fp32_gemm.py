"""fp32_gemm (GPU only): large matrix multiplies in full FP32, tensor cores left idle.

Injected (``--variant bottleneck``): a stack of 4096-wide Linear layers trained in float32 with
TF32 switched off (``torch.backends.cuda.matmul.allow_tf32 = False``,
``torch.set_float32_matmul_precision("highest")``), so every GEMM runs on the GPU's FP32 units.

Clean twin (``--variant clean``): the same model under ``torch.autocast("cuda",
dtype=torch.bfloat16)``: the GEMMs run on tensor cores.

What a user sees on a GPU (compute capability 7.0 or newer): the kernel table full of
``sgemm``/``ampere_sgemm``-style FP32 kernels taking nearly all kernel time, none on tensor
cores, steps several times slower than the twin, and the advisor's ``precision`` finding. On
the CPU the case runs (FP32 against bf16 autocast on the CPU) but there are no tensor cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from examples.bottlenecks import common

CPU = common.Sizes(batch=256, features=512, width=512, depth=4, batches=8)
CUDA = common.Sizes(batch=4096, features=4096, width=4096, depth=4, batches=8)


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("fp32_gemm", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    if args.is_bottleneck:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    loader = common.resident_features(sizes, args.device)
    model = common.model_for(sizes, args.device)
    precision: common.Precision = "fp32" if args.is_bottleneck else "bf16"
    with common.open_session(args, batch_size=sizes.batch) as session:
        result = common.train(session, model, loader, args, precision=precision)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
