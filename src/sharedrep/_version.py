"""The package version (one place; read by the CLI, the demo and the report)."""

__version__ = "0.1.0"
