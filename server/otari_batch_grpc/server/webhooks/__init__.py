"""Webhooks out (#32, under way): where one may be delivered (targets), its body (events) and Standard Webhooks
headers (signing), one sent to its receiver (sender), and when a failed one is tried again (schedule)."""
