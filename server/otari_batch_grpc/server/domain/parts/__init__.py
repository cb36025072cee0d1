"""A batch of any size: several upstream batches (parts) behind one id. How a batch is split (plan), and what the
parts together are (whole: the one status rule, the counts)."""
