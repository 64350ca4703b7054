"""Pictures and the self-contained run report (matplotlib, Agg backend; no display needed)."""
