"""DISCS samplers (in progress)."""
