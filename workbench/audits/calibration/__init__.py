"""workbench/audits/calibration."""
