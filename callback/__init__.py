"""The WeCom callback receiver: verify, decrypt and record WeCom's events, then apply them."""
