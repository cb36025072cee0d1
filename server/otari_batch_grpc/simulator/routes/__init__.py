"""The simulator's HTTP routes: the gateway's batch routes (batches), its key and user management (accounts) and its
model list (models), what each gateway route does first (gate), and the simulator's own controls (controls)."""
