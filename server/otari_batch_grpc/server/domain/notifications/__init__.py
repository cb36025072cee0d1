"""Notifications for services that cannot hold a stream (#32, under way): webhook endpoints, the outbox of what
each is to be sent (written with the revisions), and its delivery."""
