"""Which device and precision to encode with: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError

DEVICES = ("auto", "cuda", "mps", "cpu")
# Per device: big batches keep a GPU busy; on CPU, past ~64 the gain is gone (STACK.md).
DEFAULT_BATCH_SIZE = {"cuda": 512, "mps": 128, "cpu": 64}


@dataclass(frozen=True)
class DevicePlan:
    device: str
    dtype: str  # "float32", "float16" or "bfloat16"
    batch_size: int


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Native bfloat16 arithmetic (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_device(requested: str = "auto") -> str:
    import torch

    if requested not in DEVICES:
        raise ConfigError(f"device {requested!r} is not one of {', '.join(DEVICES)}.")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but torch sees no CUDA GPU; use 'auto' or 'cpu'.")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "device 'mps' was requested but this machine has no Apple GPU; use 'auto' or 'cpu'."
        )
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def plan_for(device: str, batch_size: int = 0, precision: str = "auto") -> DevicePlan:
    """fp16 on CUDA; bf16 on CPU only where the CPU does bf16 natively (then verified by the
    encoder against fp32); fp32 otherwise. `precision` forces one of them."""
    if precision == "auto":
        if device == "cuda":
            dtype = "float16"
        elif device == "cpu" and cpu_has_bf16():
            dtype = "bfloat16"
        else:
            dtype = "float32"
    elif precision in ("float32", "float16", "bfloat16"):
        dtype = precision
    else:
        raise ConfigError(f"precision {precision!r}: use auto, float32, float16 or bfloat16.")
    return DevicePlan(device, dtype, batch_size or DEFAULT_BATCH_SIZE[device])
