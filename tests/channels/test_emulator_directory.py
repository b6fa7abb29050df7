"""The emulator's directory speaks WeCom's shapes, cursors, limits and errcodes, and an unmodified
third-party SDK (wechatpy) pages through it."""

from __future__ import annotations

import pytest
import requests

from channels.emulator import WeComEmulator
from channels.emulator.directory_world import DirectoryWorld, ext_id
from channels.wecom import WeComClient
from core.errors import ChannelRateLimited, ChannelRejected
from tests.channels.conftest import CORP_ID, CORP_SECRET

BATCH = "/cgi-bin/externalcontact/batch/get_by_user"


@pytest.fixture
def world(emulator: WeComEmulator) -> DirectoryWorld:
    return emulator.seed_directory(
        DirectoryWorld.generate(staff=5, contacts=230, groups_per_staff=2)
    )


def _post(emulator: WeComEmulator, client: WeComClient, path: str, body: dict) -> dict:
    url = f"{emulator.url}/cgi-bin/externalcontact/{path}"
    return requests.post(
        url, params={"access_token": client.access_token()}, json=body, timeout=5
    ).json()


def test_batch_get_by_user_pages_every_relation_once(
    world: DirectoryWorld, client: WeComClient
) -> None:
    """Cursor paging over 100 userids at most 100 a page lists each relation exactly once."""
    seen, cursor, pages = [], None, 0
    while True:
        page = client.batch_get_by_user(world.staff, cursor, 100)
        pages += 1
        assert len(page["external_contact_list"]) <= 100
        seen += [(i["follow_info"]["userid"], i["external_contact"]["external_userid"])
                 for i in page["external_contact_list"]]  # fmt: skip
        cursor = page["next_cursor"] or None
        if cursor is None:
            break
    assert sorted(seen) == sorted(world.iter_relations())
    assert len(seen) == 253 and pages == 3  # 230 contacts, every 10th followed twice


def test_directory_limits_answer_wecom_errcodes(
    emulator: WeComEmulator, world: DirectoryWorld, client: WeComClient
) -> None:
    """Over-long userid_list, limit over 100, a forged cursor, unknown ids: WeCom's errcodes."""
    assert (
        _post(emulator, client, "batch/get_by_user", {"userid_list": ["x"] * 101})["errcode"]
        == 40058
    )
    body = {"userid_list": world.staff, "limit": 101}
    assert _post(emulator, client, "batch/get_by_user", body)["errcode"] == 40058
    body = {"userid_list": world.staff, "cursor": "nonsense"}
    assert _post(emulator, client, "batch/get_by_user", body)["errcode"] == 40058
    assert (
        _post(emulator, client, "batch/get_by_user", {"userid_list": ["ghost"]})["errcode"] == 60111
    )
    assert _post(emulator, client, "groupchat/list", {"limit": 1001})["errcode"] == 40058
    assert _post(emulator, client, "groupchat/get", {"chat_id": "wrNope"})["errcode"] == 40050
    with pytest.raises(ChannelRejected) as unknown:
        client.get_external_contact("wmNobody")
    assert unknown.value.errcode == 40096
    no_token = requests.post(f"{emulator.url}{BATCH}", json={"userid_list": world.staff}, timeout=5)
    assert no_token.json()["errcode"] == 41001


def test_get_pages_follow_user_beyond_500(emulator: WeComEmulator, client: WeComClient) -> None:
    """externalcontact/get pages follow_user with a cursor; the client joins the pages."""
    world = emulator.seed_directory(DirectoryWorld.generate(staff=501, contacts=0))
    for userid in world.staff:
        world.add_contact({"userid": userid, "external_userid": "wmPopular"})
    first = _get(emulator, client, {"external_userid": "wmPopular"})
    assert len(first["follow_user"]) == 500 and first["next_cursor"]
    assert len(client.get_external_contact("wmPopular")["follow_user"]) == 501


def _get(emulator: WeComEmulator, client: WeComClient, query: dict) -> dict:
    params = {"access_token": client.access_token(), **query}
    return requests.get(
        f"{emulator.url}/cgi-bin/externalcontact/get", params=params, timeout=5
    ).json()


def test_directory_calls_share_the_per_api_rate_limit(
    emulator: WeComEmulator, world: DirectoryWorld, client: WeComClient
) -> None:
    """The 45009 limit counts directory calls per API like the sending ones."""
    emulator.configure(rate_limit_per_minute=2)
    client.batch_get_by_user(world.staff[:1])
    client.batch_get_by_user(world.staff[:1])
    with pytest.raises(ChannelRateLimited):
        client.batch_get_by_user(world.staff[:1])
    assert client.get_follow_user_list() == world.staff  # another API, its own count


def test_admin_calls_change_the_directory(emulator: WeComEmulator, client: WeComClient) -> None:
    """Seed, add and remove contacts, members and tags over HTTP; the APIs answer accordingly."""
    admin = f"{emulator.url}/emulator/directory"
    counts = requests.post(f"{admin}/seed", json={"staff": 2, "contacts": 10}, timeout=5).json()
    assert (counts["contacts"], counts["relations"], counts["groups"]) == (10, 11, 2)
    added = requests.post(f"{admin}/add_contact", json={"userid": "staff00000",
                          "external_contact": {"name": "王女士"}}, timeout=5).json()  # fmt: skip
    new = added["external_userid"]
    assert client.get_external_contact(new)["external_contact"]["name"] == "王女士"
    requests.post(f"{admin}/remove_contact", json={"external_userid": ext_id(3)}, timeout=5)
    chat = "wrEmu00000x00"
    requests.post(f"{admin}/change_group", json={"chat_id": chat, "add_member": [new]}, timeout=5)
    members = [m["userid"] for m in client.get_group_chat(chat)["group_chat"]["member_list"]]
    assert new in members
    tag = requests.post(f"{admin}/add_tag", json={"group_name": "渠道", "name": "抖音"}, timeout=5)
    assert tag.json()["tag_id"] in {t["id"] for g in client.get_corp_tag_list() for t in g["tag"]}
    assert requests.get(admin, timeout=5).json()["contacts"] == 10
    bad = requests.post(f"{admin}/add_contact", json={"userid": "ghost"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["errcode"] == 60111


def test_wechatpy_pages_through_the_directory(
    emulator: WeComEmulator, world: DirectoryWorld
) -> None:
    """wechatpy's WeChatClient, unmodified, with its base URL pointed at the emulator."""
    from wechatpy.work import WeChatClient

    sdk = WeChatClient(CORP_ID, CORP_SECRET)
    sdk.API_BASE_URL = f"{emulator.url}/cgi-bin/"
    # wechatpy fetches tokens from a fixed qyapi URL; its own fetch, aimed at the emulator:
    sdk._fetch_access_token(f"{emulator.url}/cgi-bin/gettoken",
                            {"corpid": CORP_ID, "corpsecret": CORP_SECRET})  # fmt: skip
    assert sdk.external_contact.get_follow_user_list()["follow_user"] == world.staff
    listed = list(sdk.external_contact.gen_all_by_user(world.staff[0], limit=7))
    assert [i["external_contact"]["external_userid"] for i in listed] == [
        ext for user, ext in world.iter_relations() if user == world.staff[0]
    ]
    chats = sdk.external_contact_group_chat.list_all(limit=3)
    assert sorted(c["chat_id"] for c in chats) == sorted(world.groups)
    detail = sdk.external_contact_group_chat.get(chats[0]["chat_id"])["group_chat"]
    assert detail["owner"] in world.staff and detail["member_list"]
    tags = sdk.external_contact.get_corp_tag_list()["tag_group"]
    assert sum(len(g["tag"]) for g in tags) == 12
