"""gvae-bench's documented entry point: ``python runner.py --models gvae,wgan_gp --dataset mnist``.

The command line itself is ``gvae_bench.cli`` (also installed as the ``gvae-bench`` command); the
sweep it runs is the library call ``gvae_bench.sweep.run_sweep``.
"""

from gvae_bench.cli import main

if __name__ == "__main__":
    main()
