"""Tether: tether tracker work to strategic KPIs and flag where it drifts."""

from importlib.metadata import PackageNotFoundError, version

from tether.hookspecs import hookimpl

try:
    __version__ = version("tether")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = ["hookimpl", "__version__"]
