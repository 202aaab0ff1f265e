"""The node: one `voxline serve` process supervising listeners, admission, job processes and the
shared inference servers (issue 15)."""
