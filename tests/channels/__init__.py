"""Tests of the delivery channels, the WeCom client and its emulator."""
