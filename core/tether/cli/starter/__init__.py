"""Templates `tether init` renders into a new workspace: tether.yaml, kpis.yaml, rules."""
