"""Settings for the imweb that the benchmarks start: the product's settings, with the per-person send limit out of
the way (a benchmark user sends far faster than a person may; the limit is tested in tests/chat, not here)."""

from imweb.settings import *  # noqa: F403

IMWEB_MESSAGE_RATE_LIMITS = ((1_000_000_000, 10),)
