"""How much memory a new allocation can get on a device: one place, used by the training preflight and by evaluate."""
from __future__ import annotations

import os

import torch


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory available to a new allocation on ``device`` (None when it cannot be told)."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None  # MPS shares system memory but reports no free figure
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
