"""tether.yaml: its sections, the located-YAML reader and checker, loading and the JSON Schema."""
