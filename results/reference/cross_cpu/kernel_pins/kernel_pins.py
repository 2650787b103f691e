"""Can pinning the CPU kernels make this machine give a committed run's numbers bit for bit?

Run from a checkout of the run's commit, in the release's environment:

    OMP_NUM_THREADS=1 .venv/bin/python kernel_pins.py <run folder> <steps> <out.csv>

For each setting of ATEN_CPU_CAPABILITY (PyTorch's vectorised kernels), ONEDNN_MAX_CPU_ISA
(oneDNN's convolutions) and MKL_CBWR / MKL_ENABLE_INSTRUCTIONS (MKL's matrix products), a child
process trains the recorded run for ``steps`` steps from its record (one torch thread) and the
rows of its loss log are compared with the committed ``losses.csv``, every column as written.
"""
from __future__ import annotations

import csv
import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ATEN = ("avx2", "default")
ONEDNN = ("AVX2", "AVX", "SSE41")
MKL = ((), ("MKL_CBWR", "COMPATIBLE"), ("MKL_CBWR", "SSE4_2"), ("MKL_CBWR", "AVX"), ("MKL_CBWR", "AVX2"),
       ("MKL_CBWR", "AUTO,STRICT"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX"))

CHILD = """
import csv, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from gvae_bench.results.reproduce import _read, _spec
from gvae_bench.execution.run import execute_run
from gvae_bench.execution.training import Intermediate
run_dir, steps, scratch, data_root = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
spec = _spec(_read(run_dir), data_root, scratch, "cpu")
execute_run(spec, intermediate=Intermediate(every=steps, judge=lambda step, model: True), evaluate_test=False)
print(torch.backends.cpu.get_cpu_capability())
"""


def main(run_dir: Path, steps: int, out: Path, data_root: Path) -> None:
    committed = list(csv.DictReader(open(run_dir / "losses.csv")))
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "cpu", "aten_cpu_capability", "onednn_max_cpu_isa", "mkl", "capability_used",
                         "steps", "rows_identical", "rows", "first_loss_here", "first_loss_committed"])
        for aten, onednn, mkl in itertools.product(ATEN, ONEDNN, MKL):
            env = dict(os.environ, ATEN_CPU_CAPABILITY=aten, ONEDNN_MAX_CPU_ISA=onednn, OMP_NUM_THREADS="1")
            env.pop("MKL_CBWR", None), env.pop("MKL_ENABLE_INSTRUCTIONS", None)
            env.update([mkl] if mkl else [])
            with tempfile.TemporaryDirectory() as scratch:
                used = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), str(steps), scratch, str(data_root)],
                                      env=env, check=True, capture_output=True, text=True).stdout.split()[-1]
                here = list(csv.DictReader(open(next(Path(scratch).rglob("losses.csv")))))
            pairs = list(zip(here, committed))
            writer.writerow(["/".join(run_dir.parts[-4:]), cpu, aten, onednn, "=".join(mkl) or "unset", used, steps,
                             sum(a == b for a, b in pairs), len(pairs), here[0]["loss"], committed[0]["loss"]])
            handle.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]),
         Path(sys.argv[4]) if len(sys.argv) > 4 else Path("../shared/data"))
