"""The built-in metrics of gvae-bench, installed as ``gvae_bench.metrics``: one module per plugin, each
registering itself by name (``gvae_bench.registry``). They import the core's contracts
(``gvae_bench.contracts``); the core never imports them.
"""

if __name__ != "gvae_bench.metrics":  # imported as the old top-level package `metrics` from a checkout
    raise ImportError("the top-level package 'metrics' is now 'gvae_bench.metrics': write "
                      "'import gvae_bench.metrics.<module>' (the contracts are in 'gvae_bench.contracts'), and "
                      "install the harness with 'pip install -e .' from its checkout")
