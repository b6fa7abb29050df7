"""Load an SOP by id for a flow run, and decide whether it runs on a day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.clock import runs_on
from core.errors import SopDefinitionError
from core.settings import get_settings
from soplang.lint import lint_file
from soplang.loader import find_sop, load_sops


@task(name="load-sop", cache_policy=NO_CACHE)
def load_sop_by_id(sop_id: str) -> Any:
    """The SopSpec with this id, refused before anything is recorded if lint finds an error."""
    spec = find_sop(sop_id, get_settings().sop_dir)
    errors = lint_file(spec.path).errors
    if errors:
        raise SopDefinitionError(
            f"{spec.path} has {len(errors)} error(s); fix them (see `sopflow lint`) and re-run:\n"
            + "\n".join(str(p) for p in errors),
            problems=[str(p) for p in errors],
            sop_id=sop_id,
        )
    return spec


def runs_that_day(spec: Any, day: dt.date) -> bool:
    """Whether the SOP's `days` rule (China's official calendar) includes `day`."""
    schedule = getattr(spec, "schedule", None)
    return schedule is None or runs_on(day, schedule.days)


@task(name="load-all-sops", cache_policy=NO_CACHE)
def load_all_sops() -> list[Any]:
    """Every SOP in the SOP folder (files with errors stop the run with their problems)."""
    return load_sops([get_settings().sop_dir])
