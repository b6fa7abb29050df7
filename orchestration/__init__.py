"""What sopflow sets up in Prefect: the wecom-api limit, the zombie automation, campaign runs."""
