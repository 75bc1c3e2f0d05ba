"""The version of gradtool: one place, read by the package face, the CLI, the reports and
the build (pyproject.toml)."""

__version__ = "0.1.0"
