"""Demo and benchmark data (`jobql seed`, `scripts/serve`'s first start, `bench`): a generator of
realistic, reproducible job histories, written through `jobql.storage.bulk`."""

from __future__ import annotations

from jobql.demo.seed import SeedPlan, SeedResult, reference_time, seed_database

__all__ = ["SeedPlan", "SeedResult", "reference_time", "seed_database"]
