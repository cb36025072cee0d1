"""Webhooks out (#32, under way): where one may be delivered (targets), its Standard Webhooks headers (signing), and
one sent to its receiver (sender)."""
