"""Chinese customer names and phone numbers, built once from Faker's zh_CN data and drawn in bulk."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

# Mobile number prefixes of the three carriers (fake numbers, stored only).
PHONE_PREFIXES = tuple(
    str(p)
    for p in (
        *range(130, 140),
        *range(150, 154),
        *range(155, 160),
        166,
        *range(170, 179),
        *range(180, 190),
        *range(191, 200),
    )
)
FAKER_GIVEN_SHARE = 0.45  # Faker's given names as they are (伟, 秀英); the rest pair two of its one-character names (静怡)


@dataclass(frozen=True)
class NamePools:
    """Surnames with cumulative weights, and given-name pools per gender."""

    surnames: tuple[str, ...]
    surname_cum_weights: tuple[float, ...]
    female_given: tuple[str, ...]
    male_given: tuple[str, ...]


@lru_cache(maxsize=1)
def name_pools() -> NamePools:
    """The pools from Faker's zh_CN person provider (its data only; no Faker calls per row)."""
    from faker.providers.person.zh_CN import Provider

    surnames = tuple(Provider.last_names)
    weights = tuple(accumulate(float(w) for w in Provider.last_names.values()))
    return NamePools(
        surnames=surnames,
        surname_cum_weights=weights,
        female_given=_given_pool(tuple(Provider.first_names_female)),
        male_given=_given_pool(tuple(Provider.first_names_male)),
    )


def _given_pool(names: tuple[str, ...]) -> tuple[str, ...]:
    singles = [name for name in names if len(name) == 1]
    pairs = tuple(a + b for a in singles for b in singles if a != b)
    ratio = FAKER_GIVEN_SHARE / (1 - FAKER_GIVEN_SHARE)
    return pairs + names * max(1, round(ratio * len(pairs) / len(names)))


def draw_names(rng: random.Random, genders: list[str]) -> list[str]:
    """One full name per gender ("female" / "male")."""
    pools = name_pools()
    n = len(genders)
    families = rng.choices(pools.surnames, cum_weights=pools.surname_cum_weights, k=n)
    female = rng.choices(pools.female_given, k=n)
    male = rng.choices(pools.male_given, k=n)
    return [
        family + (f if g == "female" else m)
        for family, f, m, g in zip(families, female, male, genders, strict=True)
    ]


def draw_phones(rng: random.Random, n: int) -> list[str]:
    """`n` plausible 11-digit mainland mobile numbers."""
    prefixes = rng.choices(PHONE_PREFIXES, k=n)
    rand = rng.randrange
    return [f"{prefix}{rand(100_000_000):08d}" for prefix in prefixes]
