"""The deterministic demo retail world behind `sopflow demo-data`.

`load_demo_world(url, customers=N, seed=S)` fills a freshly migrated database with a
retail chain: 8 cities with stores and advisors (导购), ~150 products, today's and
tomorrow's deals (早报价 / 晚安心选), a draft 双12 campaign, customer groups per city and
theme, and N customers with 180 days of orders, tags, opt-outs, stage history and events.
The same seed gives the same rows and ids; only timestamps move with `today`.

Stages follow these rules (days are local calendar days before today; activity is the
last order, or the day the contact was added if there is none):
deleted contact → churned; added ≤ 14 days ago with ≤ 1 order → new; activity > 90 days
ago → churned; > 30 days → dormant; ≥ 6 orders → mature; otherwise growing.
Tiers follow total spend: silver ≥ 300元, gold ≥ 1,000元, platinum ≥ 3,000元.
"""

from __future__ import annotations

from demo.world import load_demo_world

__all__ = ["load_demo_world"]
