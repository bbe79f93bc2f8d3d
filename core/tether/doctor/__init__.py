"""`tether doctor`: the checks connectors share (checks) and the gathering of every check (run)."""
