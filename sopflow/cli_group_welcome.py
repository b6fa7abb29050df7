"""`sopflow group-welcome`: apply sop/group-welcome.yaml to WeCom's group welcome template (进群欢迎语)."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow.cli_common import fail, say


def group_welcome(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; call WeCom for nothing.")
    ] = False,
) -> None:
    """Add the group welcome template the first time, edit it when the file changed, else nothing."""
    from channels import get_channel
    from channels.media import use_media_store
    from core.clock import utcnow
    from core.errors import ChannelError, SopDefinitionError
    from core.settings import get_settings
    from engine.group_welcome import apply_group_welcome
    from models.db import upgrade
    from models.media import MediaUploads

    settings = get_settings()
    upgrade()
    channel = get_channel(settings)
    try:
        use_media_store(channel, MediaUploads())
        applied = apply_group_welcome(channel, settings.sop_dir, now=utcnow(), dry_run=dry_run)
    except SopDefinitionError as error:
        fail(f"group welcome not applied:\n{error}")
    except ChannelError as error:
        fail(_not_applied(error))
    finally:
        channel.close()
    say(str(applied))


def _not_applied(error: Exception) -> str:
    """Why the template was not applied, with what to do: fix the file, wait for WeCom, or look
    in WeCom first (an add that got no answer may have made a template sopflow does not know)."""
    from core.errors import ChannelTransient, ChannelUnreached

    if isinstance(error, ChannelUnreached):
        return f"group welcome not applied, WeCom not reached: {error}; run it again later"
    if isinstance(error, ChannelTransient):
        return (
            f"group welcome not applied, WeCom did not answer ok: {error}; it may have added "
            "or edited it all the same: check the admin console (客户群 → 入群欢迎语) and delete "
            "a template sopflow did not record before running it again, else it is added twice"
        )
    return f"group welcome not applied, WeCom refused: {error}; fix the file and run it again"
