"""``vislab demo``: the offline end-to-end tour (placeholder until the classify task lands)."""

import click


@click.command()
def demo() -> None:
    """Train, evaluate and predict on the bundled digits dataset, offline, in under 2 minutes."""
    raise click.ClickException("demo not implemented yet")
