"""One run and the sweep's machinery: resolving a run's config (``runs``), executing it (``run``:
train, draw, evaluate, record), the training loop, checkpoints, interrupts and live tracking, the
executors (in this process, in parallel processes, on Ray), the run record (``records``), the
domain classifier and the evaluation suite's driver. It imports nothing above it (``results``,
``report``, ``tuning``, ``cli``, ``gvae_bench.sweep``); ``tests/test_imports.py`` checks.
"""
