"""Shared set-up of the speed benchmarks (pytest-benchmark), kept out of the default test command.

Run them with the command in the README ("Test"); ``pyproject.toml``'s ``addopts``
ignores this folder, so the command clears ``addopts`` and names the folder.

What this file provides:

* ``--speed-threads N`` (default 1): torch's CPU thread count for every benchmark, set once per
  session, so that figures taken on a shared or busy machine are comparable between runs.
* ``--speed-device auto|cpu|cuda`` (default auto: cuda when available): where models, data and
  metric inputs live. Timings synchronise the device before reading the clock.
* ``speed_data``: MNIST as the harness loads it (``$GVAE_BENCH_DATA``, else ``../shared/data``),
  train and test tensors in [-1, 1]; without the files, uniform noise of the same shapes (timings
  do not depend on pixel values) and the summary says so.
* ``speed_report``: every benchmark adds its figures here; at the end of the session they are
  printed as Markdown tables (the ratios of the speed goals), ready for ``results/reference/speed.md``.
* ``interleaved_rounds``: the timing scheme used everywhere: the contenders of a comparison
  alternate call by call inside each round (A B, B A, ...), so that a load change on the machine
  hits all of them alike; every call is timed by the wall clock and by the process's CPU time,
  and a ratio is taken per round between times of the same round.
* The clock the goals are judged on (``SpeedReport.clock``): the process's CPU time on a CPU with
  one torch thread, where the other jobs of a shared machine stretch the wall clock but not the
  work; the wall clock otherwise (GPU work is asynchronous to the CPU). Both are printed.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gvae-bench speed")
    group.addoption("--speed-threads", type=int, default=1,
                    help="torch CPU threads for the speed benchmarks (default 1)")
    group.addoption("--speed-device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="device of the speed benchmarks (default: cuda when available, else cpu)")


# ---------------------------------------------------------------------------------------- timing


def synchronise(device: torch.device) -> None:
    """Wait for queued device work, so that a clock reading covers it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Seconds per round of one contender: wall clock and process CPU time."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def of(self, clock: str) -> list[float]:
        return self.cpu if clock == "cpu" else self.wall


def interleaved_rounds(benchmark: Any, contenders: dict[str, Callable[[], object]], rounds: int,
                       device: torch.device, slices: int = 1) -> dict[str, Timings]:
    """Time ``contenders`` side by side and return each one's seconds per round.

    A round calls every contender ``slices`` times, alternating between them call by call in an
    order that reverses every other call (A B, B A, A B, ... for two), so that a load change on the
    machine, or a warm cache left by the one before, hits all of them alike. Each call is timed by
    the wall clock and by the process's CPU time (``time.process_time``); per round the calls of a
    contender are summed. pytest-benchmark's own table shows the time of whole rounds (all
    contenders together).
    """
    names = list(contenders)
    times = {name: Timings() for name in names}
    counter = {"round": 0}

    def one_round() -> None:
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        for s in range(slices):
            turn = counter["round"] * slices + s
            shift = (turn // 2) % len(names)
            order = names[shift:] + names[:shift]
            for name in (order if turn % 2 == 0 else order[::-1]):
                synchronise(device)
                wall_0, cpu_0 = time.perf_counter(), time.process_time()
                contenders[name]()
                synchronise(device)
                wall[name] += time.perf_counter() - wall_0
                cpu[name] += time.process_time() - cpu_0
        counter["round"] += 1
        for name in names:
            times[name].wall.append(wall[name])
            times[name].cpu.append(cpu[name])

    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    return times


def paired_ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """Per-round ratios numerator[i] / denominator[i] (times taken in the same round)."""
    return [a / b for a, b in zip(numerator, denominator)]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Ratio:
    """Per-round ratios of two contenders on one clock: their median, min and max."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, times: dict[str, Timings], numerator: str, denominator: str, clock: str) -> "Ratio":
        values = paired_ratios(times[numerator].of(clock), times[denominator].of(clock))
        return cls(median(values), min(values), max(values))

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.3f}, {self.high:.3f}]"


def verdict(ratio: Ratio, goal: float, higher_is_better: bool) -> str:
    """'met' when the median ratio reaches the goal; else 'missed by x%', noting when the
    round-to-round spread still reaches the goal (a shortfall the measurement cannot resolve)."""
    if (ratio.median >= goal) if higher_is_better else (ratio.median <= goal):
        return "met"
    shortfall = abs(ratio.median / goal - 1.0) * 100
    reached = ratio.high >= goal if higher_is_better else ratio.low <= goal
    return f"missed by {shortfall:.1f}%" + (" (within the round spread)" if reached else "")


# ---------------------------------------------------------------------------------------- memory

MEMORY_HOW = {
    "cpu": "growth of the resident-set high-water mark VmHWM (reset through /proc/self/clear_refs) in a fresh "
           "process with MALLOC_MMAP_THRESHOLD_=131072, so that every allocation of 128 KiB or more is mapped "
           "when made and unmapped when freed",
    "cuda": "growth of torch.cuda.max_memory_allocated after a reset",
}


def peak_memory_supported(device: torch.device) -> bool:
    """Whether peak memory can be measured here: CUDA, or Linux with a resettable VmHWM."""
    if device.type == "cuda":
        return True
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM" in Path("/proc/self/status").read_text()
    except OSError:
        return False


# ---------------------------------------------------------------------------------------- report


@dataclass
class SpeedReport:
    """Figures collected during the session, printed as Markdown at its end."""

    device: torch.device
    threads: int
    machine: str
    load_at_start: str
    data_note: str = ""
    training: list[dict[str, Any]] = field(default_factory=list)
    data_path: list[dict[str, Any]] = field(default_factory=list)
    mmd: list[dict[str, Any]] = field(default_factory=list)
    mmd_memory: list[dict[str, Any]] = field(default_factory=list)
    ms_ssim: list[dict[str, Any]] = field(default_factory=list)
    sweep: list[str] = field(default_factory=list)  # the parallel sweep's lines, ready to print

    @property
    def clock(self) -> str:
        """The clock the goals are judged on: the process's CPU time on a CPU with one torch thread
        (a shared machine's other jobs then slow the wall clock, not the work done), else the wall
        clock (a GPU's work is asynchronous to the CPU; several threads add up CPU time)."""
        return "cpu" if self.device.type == "cpu" and self.threads == 1 else "wall"

    @property
    def other_clock(self) -> str:
        return "wall" if self.clock == "cpu" else "cpu"

    def lines(self) -> list[str]:
        clock, other = self.clock, self.other_clock
        names = {"cpu": "process CPU time", "wall": "wall clock"}
        out = [f"machine: {self.machine}; device {self.device}; torch {torch.__version__}, "
               f"{self.threads} torch thread(s); load average at start {self.load_at_start}",
               f"data: {self.data_note}",
               f"goals judged on the {names[clock]}; ratios on the {names[other]} alongside; "
               "ratio: median [min, max] over rounds", ""]
        if self.training:
            out += ["Training step: harness (model.train_step fed by gvae_bench.execution.training.BatchStream) vs a plain "
                    "PyTorch loop (same networks, optimisers, batch, losses); images = training images drawn; "
                    f"images/s by the {names[clock]}", "",
                    "| model | batch x batches/step | steps/round x rounds | harness images/s | plain images/s "
                    f"| ratio harness/plain ({clock}) | ratio ({other}) | goal >= 1.0x |",
                    "| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for row in self.training:
                out.append(f"| {row['model']} | {row['batch']} x {row['batches_per_step']} "
                           f"| {row['steps']} x {row['rounds']} | {row['harness_ips'][clock]:.1f} "
                           f"| {row['plain_ips'][clock]:.1f} | {row['ratio'][clock]} | {row['ratio'][other]} "
                           f"| {verdict(row['ratio'][clock], 1.0, True)} |")
            out.append("")
        for row in self.data_path:
            out += [f"Data path, batches of {row['batch']}, {row['draws']} draws x {row['rounds']} rounds "
                    f"({names[clock]}): harness BatchStream {row['harness_ips'][clock]:.0f} images/s, plain random "
                    f"index batches {row['plain_ips'][clock]:.0f}, DataLoader over a TensorDataset "
                    f"{row['dataloader_ips'][clock]:.0f}; ratio harness/plain {row['ratio_plain'][clock]} "
                    f"({other}: {row['ratio_plain'][other]}): {verdict(row['ratio_plain'][clock], 1.0, True)}; "
                    f"harness/DataLoader {row['ratio_loader'][clock]}", ""]
        for row in self.mmd:
            out += [f"MMD^2_u, {row['n']} x {row['n']} samples of {row['d']} dims, block {row['block']}, "
                    f"{row['rounds']} rounds ({names[clock]}): mmd {row['mmd_s'][clock]:.2f} s, "
                    f"matmul floor {row['floor_s'][clock]:.2f} s, dense X.Y^T alone {row['dense_s'][clock]:.2f} s; "
                    f"ratio mmd/floor {row['ratio'][clock]} ({other}: {row['ratio'][other]}): goal <= 2x "
                    f"{verdict(row['ratio'][clock], 2.0, False)}", ""]
        if self.mmd_memory:
            out += [f"MMD peak memory added during one call ({MEMORY_HOW[self.device.type]})", "",
                    "| n | block | peak MiB | expected from the block size, MiB | one n x n float32 matrix, MiB |",
                    "| --- | --- | --- | --- | --- |"]
            for row in self.mmd_memory:
                out.append(f"| {row['n']} | {row['block']} | {row['peak_mb']:.1f} | {row['bound_mb']:.1f} "
                           f"| {row['n2_mb']:.0f} |")
            out.append("")
        for row in self.ms_ssim:
            out += [f"MS-SSIM, {row['pairs']} pairs of {row['size']} px images in batches of {row['batch']}, "
                    f"{row['rounds']} rounds ({names[clock]}): ours {row['ours_pps'][clock]:.0f} pairs/s, "
                    f"torchmetrics {row['tm_pps'][clock]:.0f} pairs/s (both {row['setting']}); ratio "
                    f"ours/torchmetrics {row['ratio'][clock]} ({other}: {row['ratio'][other]}): goal >= 1.0x "
                    f"{verdict(row['ratio'][clock], 1.0, True)}; ours at the production setting "
                    f"({row['production_setting']}): {row['ours_production_pps'][clock]:.0f} pairs/s", ""]
        out += self.sweep
        return out


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        model = match.group(1).strip() if match else model
    except OSError:
        pass
    text = f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def _load_average() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


_REPORT: SpeedReport | None = None


@pytest.fixture(scope="session")
def speed_device(pytestconfig: pytest.Config) -> torch.device:
    choice = pytestconfig.getoption("--speed-device")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        pytest.skip("--speed-device cuda, but CUDA is not available")
    return torch.device(choice)


@pytest.fixture(scope="session")
def speed_report(pytestconfig: pytest.Config, speed_device: torch.device) -> SpeedReport:
    global _REPORT
    threads = pytestconfig.getoption("--speed-threads")
    torch.set_num_threads(threads)
    _REPORT = SpeedReport(speed_device, threads, _machine(), _load_average())
    return _REPORT


@dataclass
class SpeedData:
    """Training and test images of MNIST (N, 1, 28, 28) in [-1, 1], on the CPU."""

    train: torch.Tensor
    test: torch.Tensor
    note: str


@pytest.fixture(scope="session")
def speed_data(speed_report: SpeedReport) -> SpeedData:
    from gvae_bench.execution.runs import RunSpec, resolve

    root = Path(os.environ.get("GVAE_BENCH_DATA", REPO.parent / "shared" / "data"))
    if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        resolved = resolve(RunSpec("vae", "mnist", "quick", 0, root, REPO / "results"))
        splits = resolved.benchmark.load()
        data = SpeedData(splits.train, splits.test, f"MNIST from {root} ({len(splits.train)} train, "
                                                    f"{len(splits.test)} test images)")
    else:
        generator = torch.Generator().manual_seed(0)
        data = SpeedData(torch.rand(60000, 1, 28, 28, generator=generator) * 2 - 1,
                         torch.rand(10000, 1, 28, 28, generator=generator) * 2 - 1,
                         f"no MNIST under {root}: uniform noise of MNIST's shapes")
    speed_report.data_note = data.note
    return data


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT is None:
        return
    terminalreporter.section("gvae-bench speed summary")
    for line in _REPORT.lines():
        terminalreporter.write_line(line)
