"""The built-in models of gvae-bench, installed as ``gvae_bench.models``: one module per plugin, each
registering itself by name (``gvae_bench.registry``). They import the core's contracts
(``gvae_bench.contracts``); the core never imports them.
"""

from gvae_bench.errors import refuse_old_top_level

refuse_old_top_level(__name__, "models")
