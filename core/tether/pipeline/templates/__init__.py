"""Tether's built-in comment templates (Jinja2, rendering the Markdown subset every
connector converts to its tracker's markup)."""
