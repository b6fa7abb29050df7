"""The sent-messages page as HTML: each task as its staff member sees it in WeCom, every value escaped."""

from __future__ import annotations

import datetime as dt
import json
from html import escape

from channels.emulator.config import LOCAL_TZ, JsonDict
from channels.emulator.sent import CHAT_TYPES, RobotCard, SentPage, SentQuery, TaskCard

CHAT_LABELS = {
    "single": ("客户群发", "1:1 to customers", "客户", "customer(s)"),
    "group": ("客户群群发", "to customer groups", "群聊", "group chat(s)"),
}
OUTCOME_LABELS = {  # get_groupmsg_send_result's statuses, as WeCom words them
    "sent": ("已发送", "sent"),
    "pending": ("未发送", "not sent yet"),
    "not_contact": ("非好友,发送失败", "not a contact"),
    "capped": ("已收到其他群发,发送失败", "over the customer's limit"),
    "refused": ("无效 id,企业微信拒收", "refused: unknown id"),
}
ATTACHMENT_LABELS = {
    "image": "图片 image",
    "link": "链接 link",
    "miniprogram": "小程序 mini-program",
    "video": "视频 video",
    "file": "文件 file",
}
CSS = """
body{margin:0;background:#f2f3f5;color:#1f2329;font:14px/1.55 -apple-system,"PingFang SC",
"Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",sans-serif}
main{max-width:880px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px}h1 small,.en{color:#8f959e;font-weight:normal;font-size:12px}
a{color:#2b6de5;text-decoration:none}a:hover{text-decoration:underline}
nav a{display:inline-block;padding:6px 12px;margin-right:6px;border-radius:6px;background:#fff}
nav a.on{background:#07c160;color:#fff}
form,.box{background:#fff;border-radius:8px;padding:10px 12px;margin:10px 0}
input,select{font:inherit;padding:2px 4px;margin-right:8px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eee}
.card{background:#fff;border-radius:10px;margin:12px 0;padding:12px 14px;box-shadow:0 1px 2px #0001}
.head{display:flex;flex-wrap:wrap;gap:8px;align-items:baseline}
.tag{border-radius:4px;padding:0 6px;font-size:12px;background:#e8f3ff;color:#2b6de5}
.tag.group{background:#e8f8ef;color:#07a04f}.tag.robot{background:#fff3e0;color:#c26a00}
.time{margin-left:auto;color:#8f959e;font-size:12px}
.bubble{background:#f7f8fa;border-radius:8px;padding:10px 12px;margin:8px 0;white-space:pre-wrap;
overflow-wrap:anywhere}
.status{font-weight:600}.status.waiting{color:#c26a00}.status.sent{color:#07a04f}
.status.cancelled{color:#8f959e}
.who{color:#51565d;font-size:13px}.who span{white-space:nowrap;margin-right:8px}
.sent{color:#07a04f}.pending{color:#c26a00}.not_contact,.capped,.refused{color:#d83931}
.meta{color:#8f959e;font-size:12px;word-break:break-all}.error{border-left:4px solid #d83931}
"""


def render(page: SentPage) -> str:
    """The whole page: header, tabs, filters, the staff overview, the cards and the pager."""
    q = page.query
    body = [_header(page), _filters(page) if q.view == "tasks" else ""]
    if q.view == "tasks":
        body.append(_staff_table(page))
        cards = [_task(card, page) for card in page.tasks]
    else:
        cards = [_robot(card, page) for card in page.robot]
    body.append(_count_line(page))
    body += cards or ['<p class="box">这里还没有消息 Nothing here yet.</p>']
    body.append(_pager(page))
    return _document("已发送消息 Sent messages", "".join(body))


def error_page(message: str) -> str:
    """A page that says what was wrong with the query and how to get back."""
    return _document(
        "查询有误 Bad query",
        f'<h1>查询有误 <small>Bad query</small></h1><p class="box error">{e(message)}</p>'
        '<p><a href="/">返回全部消息 Back to all sent messages</a></p>',
    )


def e(value: object) -> str:
    """`value` as HTML text, quotes included: message text is operator-written."""
    return escape(str(value), quote=True)


def local_time(at: float) -> str:
    """A Unix time on the Asia/Shanghai wall clock."""
    return dt.datetime.fromtimestamp(at, LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} · WeCom 模拟器</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _who(userid: str, page: SentPage) -> str:
    name = page.names.get(userid)
    return f"{e(name)} <span class=en>({e(userid)})</span>" if name else e(userid)


def _header(page: SentPage) -> str:
    kept = (
        f"状态文件 state file: {e(page.state_file)}"
        if page.state_file
        else "仅在内存中,重启即清空 in memory only: a restart forgets it"
    )
    tabs = [
        ("tasks", f"群发任务 Mass messages ({page.task_count})"),
        ("robot", f"群机器人 Robot posts ({page.robot_count})"),
    ]
    links = "".join(
        f'<a class="{"on" if view == page.query.view else ""}" href="{e(SentQuery().link(view=view))}">'
        f"{e(label)}</a>"
        for view, label in tabs
    )
    return (
        "<h1>已发送消息 <small>Sent messages · WeCom emulator</small></h1>"
        f'<p class="meta">最新的在前 newest first · 时间为北京时间 times in Asia/Shanghai · {kept}</p>'
        f"<nav>{links}</nav>"
    )


def _filters(page: SentPage) -> str:
    q = page.query
    options = "".join(f'<option value="{e(userid)}">' for userid, _, _ in page.staff)
    kinds = [("", "全部 all")] + [(c, f"{CHAT_LABELS[c][0]} {c}") for c in CHAT_TYPES]
    select = "".join(
        f'<option value="{e(value)}"{" selected" if value == (q.chat_type or "") else ""}>'
        f"{e(label)}</option>"
        for value, label in kinds
    )
    return (
        '<form method="get" action="">'
        f'员工 staff <input name="staff" list="staff-ids" value="{e(q.staff or "")}" size="16">'
        f'<datalist id="staff-ids">{options}</datalist>'
        f'群/客户 group or customer id <input name="target" value="{e(q.target or "")}" size="16">'
        f'类型 type <select name="chat_type">{select}</select>'
        '<button type="submit">筛选 Filter</button> <a href="/">清除 Clear</a></form>'
    )


def _staff_table(page: SentPage) -> str:
    if not page.staff:
        return ""
    q = page.query
    rows = "".join(
        f'<tr><td><a href="{e(q.link(staff=userid))}">{_who(userid, page)}</a></td>'
        f"<td>{single}</td><td>{group}</td><td>{single + group}</td></tr>"
        for userid, single, group in page.staff
    )
    more = page.staff_count - len(page.staff)
    extra = f'<p class="meta">另有 {more} 位员工 and {more} more staff members</p>' if more else ""
    return (
        '<details class="box"><summary>按员工 By staff member '
        f"({page.staff_count})</summary><table><tr><th>员工 staff</th>"
        "<th>客户群发 1:1</th><th>客户群群发 groups</th><th>合计 total</th></tr>"
        f"{rows}</table>{extra}</details>"
    )


def _count_line(page: SentPage) -> str:
    q = page.query
    shown = []
    if q.staff:
        shown.append(f"员工 staff {_who(q.staff, page)}")
    if q.target:
        shown.append(f"群/客户 group or customer {_who(q.target, page)}")
    if q.chat_type:
        shown.append(f"{CHAT_LABELS[q.chat_type][0]} {q.chat_type}")
    where = f" · 筛选 filtered by {' · '.join(shown)}" if shown else ""
    return (
        f'<p class="meta">共 {page.total} 条 {page.total} item(s){where} · '
        f"第 {q.page} / {page.pages} 页 page {q.page} of {page.pages}</p>"
    )


def _task(card: TaskCard, page: SentPage) -> str:
    kind, kind_en, unit, unit_en = CHAT_LABELS.get(card.chat_type, CHAT_LABELS["single"])
    q = page.query
    recipients = "".join(
        f'<span class="{outcome}"><a href="{e(q.link(target=target))}">{_who(target, page)}</a>'
        f" · {e(OUTCOME_LABELS[outcome][0])}</span>"
        for target, outcome in card.shown
    )
    rest = card.targets - len(card.shown)
    if rest:
        recipients += f"<span>… 另有 {rest} 个 and {rest} more</span>"
    outcomes = " · ".join(
        f'<span class="{outcome}">{e(zh)} {e(en)}: {card.outcomes[outcome]}</span>'
        for outcome, (zh, en) in OUTCOME_LABELS.items()
        if card.outcomes[outcome]
    )
    return (
        f'<article class="card task" id="{e(card.msgid)}"><div class="head">'
        f'<span class="tag {e(card.chat_type)}">{kind} <span class=en>{kind_en}</span></span>'
        f'<span>员工 staff <a href="{e(q.link(staff=card.sender))}">{_who(card.sender, page)}</a></span>'
        f'<span class="time">{local_time(card.create_time)}</span></div>'
        f"{_status(card)}"
        f'<div class="bubble">{e(card.content)}</div>{_attachments(card.attachments)}'
        f'<div class="who">将发送给 {card.targets} 个{unit} to {card.targets} {unit_en}: '
        f"{recipients}</div>"
        f'<div class="who">发送结果 results: {outcomes}</div>'
        f'<div class="meta">msgid {e(card.msgid)}{_reminded(card)}</div></article>'
    )


def _status(card: TaskCard) -> str:
    if card.confirmed_at is not None:
        css, text = (
            "sent",
            f"员工已确认发送 Sent by the staff member · {local_time(card.confirmed_at)}",
        )
    elif card.cancelled_at is not None:
        css, text = "cancelled", f"已取消 Cancelled · {local_time(card.cancelled_at)}"
    else:
        css, text = "waiting", "等待员工确认发送 Waiting for the staff member to confirm"
    if card.dispatching:
        text += " · 分发中 dispatching"
    return f'<div class="status {css}">{text}</div>'


def _reminded(card: TaskCard) -> str:
    return f" · 已提醒 {card.reminders} 次 reminded {card.reminders}×" if card.reminders else ""


def _attachments(attachments: list[JsonDict]) -> str:
    if not attachments:
        return ""
    items = []
    for attachment in attachments:
        kind = str(attachment.get("msgtype", "?"))
        detail = _part(attachment, kind)
        words = [
            str(detail[k]) for k in ("title", "desc", "url", "page", "media_id") if detail.get(k)
        ]
        label = ATTACHMENT_LABELS.get(kind, kind)
        items.append(f"<li>[{e(label)}] {e(' · '.join(words))}</li>")
    return f'<ul class="who">附件 attachments{"".join(items)}</ul>'


def _part(body: JsonDict, kind: str) -> JsonDict:
    """The object a WeCom body keeps under its msgtype (`{"msgtype": "link", "link": {…}}`)."""
    part = body.get(kind)
    return part if isinstance(part, dict) else {}


def _robot(card: RobotCard, page: SentPage) -> str:
    body = card.body
    kind = str(body.get("msgtype", "?"))
    part = _part(body, kind)
    if kind in ("text", "markdown"):
        shown = str(part.get("content", ""))
    elif kind == "news":
        articles = [a for a in part.get("articles") or [] if isinstance(a, dict)]
        shown = "\n".join(str(a.get("title", "")) for a in articles)
    elif kind == "template_card":
        shown = str((part.get("main_title") or {}).get("title", ""))
    else:
        shown = json.dumps(part, ensure_ascii=False)[:500]
    mentions = list(part.get("mentioned_list") or []) + list(
        part.get("mentioned_mobile_list") or []
    )
    at = f'<div class="who">@ {e(", ".join(map(str, mentions)))}</div>' if mentions else ""
    name = page.names.get(card.key)
    robot = e(name) if name else f"key {e(_masked(card.key))}"
    return (
        f'<article class="card robot"><div class="head"><span class="tag robot">群机器人 robot</span>'
        f"<span>{robot}</span><span class=en>{e(kind)}</span>"
        f'<span class="time">{local_time(card.time)}</span></div>'
        f'<div class="bubble">{e(shown)}</div>{at}</article>'
    )


def _masked(key: str) -> str:
    """A webhook key's first characters only: enough to tell robots apart, not to post."""
    return key[:4] + "…" if len(key) > 4 else key


def _pager(page: SentPage) -> str:
    q = page.query
    links = []
    if q.page > 1:
        links.append(f'<a href="{e(q.link(page=q.page - 1))}">← 上一页 Newer</a>')
    if q.page < page.pages:
        links.append(f'<a href="{e(q.link(page=q.page + 1))}">下一页 Older →</a>')
    return f'<nav class="box">{" ".join(links)}</nav>' if links else ""
