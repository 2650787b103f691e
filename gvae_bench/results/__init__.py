"""What the run records add up to: the leaderboards (``leaderboard``, ``leaderboard_markdown``),
the statistics and comparisons behind their cells (``stats``, ``comparisons``, ``bounds``,
``aggregate``), the study protocol and its confirmatory family (``protocol``, ``eval_protocols``,
``confirmatory``, ``power``), reproductions and readings. Built on the records alone
(``collect.read_records``); it imports ``gvae_bench.execution`` only to rerun a run (``reproduce``)
or to resolve a record from before its plan named its profile hash.
"""
