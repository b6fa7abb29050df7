"""The review (复盘): attribution, KPIs, targets, the report model and its HTML/markdown/charts."""
