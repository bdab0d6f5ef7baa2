"""The two faults a command reports in one line, with no traceback: bad input (exit 2, before any
work starts) and a program sweetspot drives that failed (exit 1). The CLI catches both."""


class ConfigError(ValueError):
    """A bad parameter or input file; its message is one line that names it."""


class ToolError(RuntimeError):
    """A program sweetspot drives (dvc, PostgreSQL, mlflow server) failed: one line, exit 1."""


class DataError(ConfigError):
    """A data source or file that does not hold what it should (bad input, exit 2): one line."""
