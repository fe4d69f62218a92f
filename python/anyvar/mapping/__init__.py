"""Mapping variations between assemblies (liftover)."""
