"""workbench/data."""
