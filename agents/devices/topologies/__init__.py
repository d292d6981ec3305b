"""Built-in topologies of the physical world (package data: YAML files)."""
