"""The otari gateway as the service meets it: the HTTP client, its transport, its failures as exceptions, the
results document parsed as it arrives, and its JSON converted to the contract's messages.
"""
