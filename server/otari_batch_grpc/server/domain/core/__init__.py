"""The core: the one path a batch state enters by, who may be served it (trust), and the front the domain's
siblings and the edge call (batches).
"""
