"""Small helpers below everything: single-flight, keyed locks, quoting a caller's value."""
