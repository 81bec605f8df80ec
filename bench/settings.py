"""Settings for the imweb that the benchmarks start: the product's settings, with the per-person send limit out of
the way (a benchmark user sends far faster than a person may; the limit is tested in tests/chat, not here).

BENCH_LIFTED_LIMITS names every setting changed here and what it limits; the benchmarks print each with their
figures (`[imweb] settings: per-person message limit lifted for the load run (bench/settings.py)`).
"""

from imweb.settings import *  # noqa: F403

BENCH_LIFTED_LIMITS = {
    "IMWEB_MESSAGE_RATE_LIMITS": "per-person message limit",
}

IMWEB_MESSAGE_RATE_LIMITS = ((1_000_000_000, 10),)
