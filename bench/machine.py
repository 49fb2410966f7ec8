"""What machine a benchmark ran on, printed beside its figures."""

from __future__ import annotations

import os
import platform


def describe_machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "no torch"
    return (f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; "
            f"{torch_info}; {platform.system()} {platform.release()}")
