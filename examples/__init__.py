"""Runnable example workspaces, shipped so `tether demo` works from an installed wheel."""
