"""gvae-bench core: registries, profiles, the one training loop, run records and leaderboards.

The concrete models, benchmarks (datasets) and metrics live in the top-level packages ``models``,
``benchmarks`` and ``metrics``; they register themselves by name and the core never names them.
"""

__version__ = "0.1.0"
