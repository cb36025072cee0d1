"""The simulator's HTTP routes: the gateway's batch routes (batches) and key and user management (accounts), what
each gateway route does first (gate), and the simulator's own controls (controls)."""
