"""The rule language: YAML rules, checked at load time and compiled to durable-rules."""
