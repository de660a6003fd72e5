"""workbench/models."""
