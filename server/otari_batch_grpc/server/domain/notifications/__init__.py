"""Notifications for services that cannot hold a stream (#32, under way): webhook endpoints."""
