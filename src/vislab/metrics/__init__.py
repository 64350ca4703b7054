"""Metrics as sum-reducible states: exact under data parallelism (all-reduce, then compute)."""
