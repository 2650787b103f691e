"""MMD^2_u on 10,000 x 10,000 samples of 784 dims: time against the matrix-multiply floor, and peak memory.

The floor is the time of the kernel matrix products alone: the same ``block x block`` products
``X_i X_j^T`` (upper-triangle blocks only, as the estimator uses symmetry), ``Y_i Y_j^T`` (same)
and ``X_i Y_j^T`` (all blocks) that ``gaussian_kernel_mmd2_unbiased`` computes, with nothing done
to their results. Whatever ``mmd`` takes beyond that is its element-wise work (distances, exp,
sums). One dense ``X Y^T`` (n x n, one matmul call) is timed too, to show that cutting the products
into blocks costs nothing by itself.

Samples: the first 10,000 MNIST training images against the 10,000 test images, flattened (d = 784),
float32, bandwidth by the metric's own rule (median heuristic on 1000 real samples, seed 0).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import torch

from gvae_bench.metrics.mmd import gaussian_kernel_mmd2_unbiased, median_heuristic_bandwidth

from .conftest import REPO, Ratio, SpeedData, SpeedReport, interleaved_rounds, median, peak_memory_supported

N = 10_000
BLOCK = 2048  # EvalConfig.mmd_block_size
ROUNDS = 3


def matmul_floor(x: torch.Tensor, y: torch.Tensor, block_size: int) -> None:
    """The block products the unbiased estimator needs, and nothing else."""
    for a, b, triangle in ((x, x, True), (y, y, True), (x, y, False)):
        for i0 in range(0, a.shape[0], block_size):
            for j0 in range(i0 if triangle else 0, b.shape[0], block_size):
                a[i0 : i0 + block_size] @ b[j0 : j0 + block_size].T


def _samples(data: SpeedData, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, float]:
    x = data.train[:n].flatten(1).contiguous().to(device)
    y = data.test[:n].flatten(1).contiguous().to(device)
    bandwidth = median_heuristic_bandwidth(y, 1000, torch.Generator().manual_seed(0))
    return x, y, bandwidth


def test_mmd_against_matmul_floor(benchmark: Any, speed_data: SpeedData, speed_report: SpeedReport) -> None:
    device = speed_report.device
    x, y, bandwidth = _samples(speed_data, N, device)
    value = gaussian_kernel_mmd2_unbiased(x[:2000], y[:2000], bandwidth, BLOCK)  # warm-up
    assert value == value  # not NaN

    times = interleaved_rounds(benchmark, {
        "mmd": lambda: gaussian_kernel_mmd2_unbiased(x, y, bandwidth, BLOCK),
        "floor": lambda: matmul_floor(x, y, BLOCK),
        "dense": lambda: x @ y.T,
    }, ROUNDS, device)
    clocks = ("cpu", "wall")
    row = {"n": N, "d": x.shape[1], "block": BLOCK, "rounds": ROUNDS,
           **{f"{who}_s": {c: median(times[who].of(c)) for c in clocks} for who in times},
           "ratio": {c: Ratio.of(times, "mmd", "floor", c) for c in clocks}}
    speed_report.mmd.append(row)
    benchmark.extra_info.update({f"{who}_seconds_{c}": times[who].of(c) for who in times for c in clocks})


# Run in a fresh process, so that memory freed by earlier work and kept by the C allocator does not
# hide the call's own peak; argv: n, block, threads. Prints the peak growth in bytes.
_MEMORY_SCRIPT = r"""
import pathlib, re, sys
import torch
from gvae_bench.metrics.mmd import gaussian_kernel_mmd2_unbiased, median_heuristic_bandwidth

n, block, threads = (int(v) for v in sys.argv[1:4])
torch.set_num_threads(threads)
generator = torch.Generator().manual_seed(0)
x = torch.rand(n, 784, generator=generator) * 2 - 1
y = torch.rand(n, 784, generator=generator) * 2 - 1
bandwidth = median_heuristic_bandwidth(y, 1000, torch.Generator().manual_seed(0))
status = pathlib.Path("/proc/self/status")
def kib(name):
    return int(re.search(rf"^{name}:\s+(\d+) kB", status.read_text(), re.MULTILINE).group(1))
pathlib.Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
before = kib("VmRSS")
gaussian_kernel_mmd2_unbiased(x, y, bandwidth, block)
print((kib("VmHWM") - before) * 1024)
"""


def _peak_bytes(n: int, block: int, device: torch.device, threads: int, data: SpeedData) -> int:
    if device.type == "cuda":
        x, y, bandwidth = _samples(data, n, device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        gaussian_kernel_mmd2_unbiased(x, y, bandwidth, block)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(n), str(block), str(threads)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=True)
    return int(done.stdout.split()[-1])


def block_bound_bytes(block: int, d: int) -> int:
    """What one ``mmd`` call should need beyond its inputs, from the block size alone: the larger of a
    block's kernel (float32) with the float64 copy its float64 sum makes (12 bytes per entry), and
    the float64 copy and square of ``block`` rows taken for the squared norms (16 bytes per value)."""
    return max(12 * block * block, 16 * block * d)


@pytest.mark.parametrize("n,block", [(N, 2048), (N, 512), (N // 2, 2048)])
def test_mmd_peak_memory_is_bounded_by_the_block(n: int, block: int, speed_data: SpeedData,
                                                  speed_report: SpeedReport) -> None:
    """Peak memory added by one ``mmd`` call, at several n and block sizes: it follows the block
    size, not n (one n x n float32 kernel matrix is 381 MiB at n = 10,000). Inputs are uniform
    noise of MNIST's flattened shape on the CPU (memory does not depend on the values)."""
    device = speed_report.device
    if not peak_memory_supported(device):
        pytest.skip("no resettable peak-memory reading here (needs Linux's /proc/self/clear_refs, or CUDA)")
    peak = _peak_bytes(n, block, device, speed_report.threads, speed_data)
    bound = block_bound_bytes(block, 784)
    speed_report.mmd_memory.append({"n": n, "block": block, "peak_mb": peak / 2**20, "bound_mb": bound / 2**20,
                                    "n2_mb": n * n * 4 / 2**20})
    assert peak < 1.2 * bound + 4 * 2**20, "peak memory is above what the block size accounts for"
