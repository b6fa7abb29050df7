"""Creating corp tags (`externalcontact/add_corp_tag`) with the WeCom client's token and limiter."""

from __future__ import annotations

from channels.http import JsonDict
from channels.wecom import EXTERNALCONTACT, WeComClient

MAX_TAGS_PER_CALL = 100  # kept well inside WeCom's 3,000 corp tags per company


def add_corp_tags(
    client: WeComClient, group_name: str, names: list[str]
) -> tuple[str, dict[str, str]]:
    """Create `names` in the tag group `group_name` (created when new): the group's id and each
    name's WeCom tag id. WeCom answers 40071 when a name is already in the group: read the list
    (`get_corp_tag_list`) first."""
    group_id, created = "", {}
    for start in range(0, len(names), MAX_TAGS_PER_CALL):
        chunk = names[start : start + MAX_TAGS_PER_CALL]
        payload: JsonDict = {"group_name": group_name, "tag": [{"name": n} for n in chunk]}
        data = client._api("POST", f"{EXTERNALCONTACT}/add_corp_tag", payload)
        group = data.get("tag_group") or {}
        group_id = str(group.get("group_id") or group_id)
        for tag in group.get("tag") or []:
            created[str(tag["name"])] = str(tag["id"])
    return group_id, created
