"""Prefect task that renders a resolved batch's texts."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.audience import ResolvedBatch
from engine.compose import Content, Rendered
from engine.timing import gc_paused


@task(name="render-messages", cache_policy=NO_CACHE)
def render_messages(content: Content, resolved: ResolvedBatch) -> Rendered:
    """Render the step's text for each target of the batch (targets without content say why)."""
    with gc_paused():
        return content.render(resolved.targets)
