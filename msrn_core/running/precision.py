"""Which precision a run computes in: bf16 or fp16 autocast, or full precision.

- CUDA: automatic mixed precision by default (bf16 where supported, else fp16 with a gradient scaler).
- CPU: bf16 autocast only when asked (``amp="bf16"``) and only on CPUs with native bf16
  (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slower than fp32 (``benchmarks/README.md``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..training_step import autocast  # noqa: F401  (the context the training step enters)

AMP_MODES = ("auto", "bf16", "fp16", "off")  # TrainConfig.amp and the CLIs' --amp


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX-512 BF16 or AMX) and oneDNN is available.

    Without those instructions bf16 is emulated and slower than fp32, so ``amp="bf16"`` on such a
    CPU runs in fp32 instead.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: ask torch's own CPU capability check
        return bool(getattr(torch.backends.mkldnn, "is_bf16_supported", lambda: False)())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (``None``: full precision).

    On the CPU only ``amp="bf16"`` autocasts, and only where :func:`cpu_has_native_bf16`.
    """
    if device.type == "cpu":
        return torch.bfloat16 if amp == "bf16" and cpu_has_native_bf16() else None
    if amp == "off" or device.type != "cuda":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def gradient_scaler(dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """The gradient scaler of a run in ``dtype``: enabled for fp16 only (a disabled one passes through)."""
    return torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
