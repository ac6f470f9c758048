"""Process set-up for a run, in one place: where TFX, Beam and TensorFlow's output goes, and its format."""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def to_file(path: pathlib.Path):
    """Everything TFX, Beam and TensorFlow print (Python and C++, Beam workers too) goes to `path`:
    file descriptor 2 is redirected, so output of native code and of child processes goes there too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


def timestamped_info() -> None:
    """INFO records with timestamps (to see where a run's time goes), TFX's absl logging included."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    logging.basicConfig(format=LOG_FORMAT, force=True)
    logging.getLogger("absl").addFilter(RedactPasswords())


class RedactPasswords(logging.Filter):
    """TFX's runner logs the ML Metadata connection config it uses, a MySQL password included: the log file
    gets it without the password."""

    PASSWORD = re.compile(r'(password:\s*)"(?:[^"\\]|\\.)*"')

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "password" in message:
            record.msg, record.args = self.PASSWORD.sub(r'\1"***"', message), ()
        return True
