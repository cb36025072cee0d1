"""What follows batches: the feed (WatchBatch, WatchBatches, WaitBatch and StreamResults(wait) are adapters over
it), the hub (one poll loop per live batch, fanned out to its subscribers), the poll loop itself, and the
subscribers' inboxes.
"""
