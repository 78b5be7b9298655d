"""Train in bf16 only where it is faster: decided on this machine, at run time.

    bf16 = use_bf16("auto")   # True on a GPU with bf16, or a CPU whose bf16 matmul beats fp32

CPUs differ between machines here: one with AVX512-BF16 ran bf16 autocast 1.2-1.9x faster than
fp32, one without it 2.2x slower. CPU flags only hint at that (oneDNN may still emulate), so a short
probe times the same matmul both ways. Hand-written: neither torch nor accelerate offers such a check.
"""

from __future__ import annotations

import functools
import time
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]


def _seconds(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks and caches its kernel on the first call
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


@functools.cache
def cpu_bf16_speedup(size: int = 512, repeats: int = 10) -> float:
    """fp32 time over bf16-autocast time of a (size x size) @ (size x size) matmul on this CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return a @ b

    return _seconds(lambda: a @ b, repeats) / _seconds(bf16, repeats)


def use_bf16(precision: Precision) -> bool:
    """Whether to train in bf16 autocast: as asked, or for "auto" where this machine runs it faster."""
    if precision != "auto":
        return precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_bf16_speedup() > 1.1  # a margin: a tie is not worth bf16's coarser rounding
