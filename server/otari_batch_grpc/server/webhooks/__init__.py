"""Webhooks out (#32, under way): where one may be delivered (targets)."""
