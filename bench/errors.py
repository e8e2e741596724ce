"""Errors meant for people.

A :class:`UserError` is a mistake in what the user asked for (an unknown name, a bad budget, an
unreadable folder, missing weights). The command line prints its message as one line on stderr
and exits with status 2, without a traceback. Plugins raise it too, for the same reasons.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input; the message names the bad value and what to do instead."""


class PluginError(Exception):
    """A plugin failed to load or returned something the core cannot use."""
