"""Private helpers shared by every subpackage: validation, bootstrap, I/O, plotting. Not public API."""
