"""gvae-bench core: registries, profiles, the one training loop, run records and leaderboards.

The concrete models, benchmarks (datasets) and metrics live in the top-level packages ``models``,
``benchmarks`` and ``metrics``; they register themselves by name and the core never names them.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:  # PEP 562: ``gvae_bench.score`` without importing torch at ``import gvae_bench``
    if name == "score":
        from gvae_bench.scoring import score

        return score
    raise AttributeError(f"module 'gvae_bench' has no attribute {name!r}")
