"""The domain: what the service knows of batches and who may see it (core), the subscriptions that follow them
(feed, hub), results, creates made once (idempotency), tokens, and the errors the service answers with.
"""
