"""KPIs: their definitions, the sources of their measurements, and their status and forecast."""
