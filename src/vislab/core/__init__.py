"""Core pieces every task shares: errors, registry, typed configs, device policy, I/O."""
