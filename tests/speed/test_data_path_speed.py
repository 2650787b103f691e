"""The data path: training batches come from a tensor held in memory on the run's device.

What ``execute_run`` does: the training split is moved to the run's device once
(``splits.train.to(device)``) and ``gvae_bench.execution.training.BatchStream`` cuts shuffled batches from it.
Checked here:

* the stream holds the training tensor itself (no copy) and returns batches on its device;
* a draw makes no copy between devices: the epoch's permutation is already on the data's device,
  so a draw is one slice and one gather (profiled; no ``aten::_to_copy`` / ``aten::copy_``). On a
  CPU a cross-device ``.to`` would be a no-op anyway, so this check bites on a GPU run;

and timed, call by call, as training images per second (batch 64, MNIST in [-1, 1]):

* ``harness``: ``BatchStream()``;
* ``plain``: ``data[torch.randint(n, (64,))]``, a random index batch from the same in-memory tensor;
* ``dataloader``: ``next()`` of a ``torch.utils.data.DataLoader`` over a ``TensorDataset`` of the same
  tensor (shuffled, no worker processes), moved to the device: the per-step DataLoader the harness
  does without.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader, TensorDataset

from gvae_bench.execution.training import BatchStream

from .conftest import Ratio, SpeedData, SpeedReport, interleaved_rounds, median

BATCH = 64
DRAWS = 300  # draws of each contender per round
ROUNDS = 5


def test_batches_come_from_the_tensor_on_its_device(speed_data: SpeedData, speed_report: SpeedReport) -> None:
    device = speed_report.device
    data = speed_data.train.to(device)
    stream = BatchStream(data, BATCH, 0)
    assert stream.data is data
    first = stream()
    assert first.device == data.device and first.shape == (BATCH, *data.shape[1:])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(20):  # within the first epoch: no new permutation
            stream()
    names = {event.key for event in prof.key_averages()}
    copies = names & {"aten::_to_copy", "aten::copy_", "Memcpy HtoD (Pageable -> Device)", "Memcpy HtoD (Pinned -> Device)"}
    assert not copies, f"a batch draw copies between devices: {sorted(copies)}"


def test_data_path_speed(benchmark: Any, speed_data: SpeedData, speed_report: SpeedReport) -> None:
    device = speed_report.device
    data = speed_data.train.to(device)
    n = len(data)
    stream = BatchStream(data, BATCH, 0)
    generator = torch.Generator(device=device).manual_seed(0)
    loader = DataLoader(TensorDataset(speed_data.train), batch_size=BATCH, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    batches: dict[str, Iterator[Any]] = {"loader": iter(loader)}

    def from_loader() -> torch.Tensor:
        try:
            (batch,) = next(batches["loader"])
        except StopIteration:
            batches["loader"] = iter(loader)
            (batch,) = next(batches["loader"])
        return batch.to(device)

    def plain() -> torch.Tensor:
        return data[torch.randint(n, (BATCH,), generator=generator, device=device)]

    for draw in (stream, plain, from_loader):
        draw()
    times = interleaved_rounds(benchmark, {"harness": stream, "plain": plain, "dataloader": from_loader},
                               ROUNDS, device, slices=DRAWS)
    clocks = ("cpu", "wall")
    images = DRAWS * BATCH
    row = {"batch": BATCH, "draws": DRAWS, "rounds": ROUNDS,
           **{f"{who}_ips": {c: images / median(times[who].of(c)) for c in clocks} for who in times},
           "ratio_plain": {c: Ratio.of(times, "plain", "harness", c) for c in clocks},
           "ratio_loader": {c: Ratio.of(times, "dataloader", "harness", c) for c in clocks}}
    speed_report.data_path.append(row)
    benchmark.extra_info.update({f"{who}_seconds_{c}": times[who].of(c) for who in times for c in clocks})
