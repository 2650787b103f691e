"""The built-in benchmarks of gvae-bench, installed as ``gvae_bench.benchmarks``: one module per plugin, each
registering itself by name (``gvae_bench.registry``). They import the core's contracts
(``gvae_bench.contracts``); the core never imports them.
"""

if __name__ != "gvae_bench.benchmarks":  # imported as the old top-level package `benchmarks` from a checkout
    raise ImportError("the top-level package 'benchmarks' is now 'gvae_bench.benchmarks': write "
                      "'import gvae_bench.benchmarks.<module>' (the contracts are in 'gvae_bench.contracts'), and "
                      "install the harness with 'pip install -e .' from its checkout")
