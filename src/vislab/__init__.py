"""vislab: deep-learning computer vision behind one API and one CLI.

Importing ``vislab`` is cheap and has no side effects; submodules load on first use.

Example:
    >>> import vislab
    >>> isinstance(vislab.__version__, str)
    True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vislab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from vislab.core.errors import VislabError  # noqa: E402

__all__ = ["VislabError", "__version__"]
