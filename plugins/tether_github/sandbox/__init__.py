"""The github sandbox: a loopback fake GitHub REST API for tests and the demo (not the connector)."""
