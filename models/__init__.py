"""The built-in models of gvae-bench, installed as ``gvae_bench.models``: one module per plugin, each
registering itself by name (``gvae_bench.registry``). They import the core's contracts
(``gvae_bench.contracts``); the core never imports them.
"""

if __name__ != "gvae_bench.models":  # imported as the old top-level package `models` from a checkout
    raise ImportError("the top-level package 'models' is now 'gvae_bench.models': write "
                      "'import gvae_bench.models.<module>' (the contracts are in 'gvae_bench.contracts'), and "
                      "install the harness with 'pip install -e .' from its checkout")
