"""Helpers of `scripts/benchmark.py`: the worker processes (gpunet, PyTorch, GEMM), FLOP counts,
memory probes and the printed tables. Nothing here is part of the gpunet package."""
