"""The ``jira`` sandbox: a loopback fake Jira site (Cloud or Data Center) for tests and the demo."""
