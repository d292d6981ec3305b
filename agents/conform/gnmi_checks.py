"""gNMI checks."""
