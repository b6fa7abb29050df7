"""Prefect tasks that load SOPs for a flow run (thin wrappers over `soplang.loader`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from core.settings import get_settings
from soplang.loader import load_sop, load_sops
from soplang.spec import SopSpec


@task(name="load-sop", cache_policy=NO_CACHE)
def load_sop_by_id(sop_id: str) -> SopSpec:
    """The fully checked SopSpec with this id, refused before anything is recorded if lint finds an error."""
    return load_sop(sop_id, get_settings().sop_dir)


@task(name="load-all-sops", cache_policy=NO_CACHE)
def load_all_sops() -> list[SopSpec]:
    """Every SOP in the SOP folder, fully checked (files with errors stop the run with their problems)."""
    return load_sops([get_settings().sop_dir])
