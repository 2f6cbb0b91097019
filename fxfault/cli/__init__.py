"""The command line, ``fxfault demo | inspect | sweep``: the only place that parses arguments
or prints."""

from .main import main

__all__ = ["main"]
