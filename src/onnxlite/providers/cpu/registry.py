"""The CPU (numpy) provider's kernel registry; kernel modules register into it on import."""

from __future__ import annotations

from ..registry import KernelRegistry

CPU_KERNELS = KernelRegistry("CPUExecutionProvider")
kernel = CPU_KERNELS.kernel

# Users' kernels (onnxlite.register_custom_op), consulted before the built-in ones.
CUSTOM_KERNELS = KernelRegistry("CPUExecutionProvider")
