"""GPU statistics from nvidia-smi (through GPUtil): never touches CUDA in this process."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def sample() -> list[dict]:
    """One reading per GPU in the seed's shape; ``[]`` where there is no NVIDIA GPU."""
    try:
        import GPUtil

        found = GPUtil.getGPUs()
    except Exception as exc:  # no driver, no nvidia-smi, or an answer GPUtil cannot parse
        log.debug("no GPU statistics: %s", exc)
        return []
    return [
        {
            "id": gpu.id,
            "name": gpu.name,
            "memory_total_mb": round(gpu.memoryTotal),
            "memory_used_mb": round(gpu.memoryUsed),
            "utilization_gpu": round(gpu.load * 100),
            "temperature": gpu.temperature,
        }
        for gpu in found
    ]
