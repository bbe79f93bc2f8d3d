"""The asana sandbox: a loopback fake Asana API for tests and the demo (not the connector)."""
