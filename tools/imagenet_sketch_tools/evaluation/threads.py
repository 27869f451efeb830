"""How the forward pass shares the CPU with the loader's workers.

On the CPU, torch's OpenMP threads and the decoding workers share the cores. GNU OpenMP (libgomp, which torch's
Linux wheels ship) keeps each thread spinning for about 300,000 iterations after every parallel region before
it sleeps: a forward pass is hundreds of short regions, so the spinning threads hold the cores the workers are
decoding on. A spin of 10,000 still bridges the gaps inside a forward pass and frees the cores between them
(benchmarks/bench_eval.py, (b): README, Evaluation speed).
"""

from __future__ import annotations

import os
import sys

SPIN_COUNT = "10000"
OWN_SETTINGS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")  # the user's own choice wins


def prefer_short_spin() -> bool:
    """Set GOMP_SPINCOUNT for this process unless the user set the spin or the wait policy; True if set.
    libgomp reads it once, when torch first loads it: with torch already imported this changes nothing."""
    if "torch" in sys.modules or any(name in os.environ for name in OWN_SETTINGS):
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True
