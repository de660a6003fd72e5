"""RM Audit Workbench: audit reward models for calibration, shortcuts, sycophancy and drift."""

__version__ = "0.1.0"
