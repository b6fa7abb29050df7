"""sopflow: run retail private-domain marketing SOPs on WeChat Work with Prefect."""
