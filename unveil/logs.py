"""Messages and progress bars.

Every library module logs through `logging` (``log = logging.getLogger(__name__)``, under the ``unveil``
logger) and shows a long loop with `progress` (tqdm). The command line shows the messages on stderr
(`show_messages`): warnings as ``warning: ...``, the rest as they are. From Python they are any library's
messages: ``logging.getLogger("unveil").setLevel(logging.ERROR)`` silences them, and unconfigured, warnings
still reach stderr (logging's last resort) while notes stay quiet.

    for path in progress(paths, "framing KDEF", unit="photo"):
        ...
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from tqdm import tqdm

PREFIX = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}


class _Stderr(logging.Handler):
    """Writes to whatever `sys.stderr` is when a message comes (a redirected stream, a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(PREFIX.get(record.levelno, "") + record.getMessage() + "\n")
            sys.stderr.flush()
        except Exception:  # logging's own contract: a failing handler reports, never raises
            self.handleError(record)


def show_messages(level: int = logging.INFO) -> None:
    """Show Unveil's messages at `level` and above on stderr, once however often it is called."""
    logger = logging.getLogger("unveil")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
    logger.setLevel(level)
    logger.propagate = False


def progress(items: Iterable | None = None, what: str = "", total: int | None = None, unit: str = "it",
             enabled: bool = True) -> tqdm:
    """The one progress bar of every long loop: tqdm on stderr, drawn only on a terminal (quiet in logs,
    pipes and tests) and never when `enabled` is false."""
    return tqdm(items, desc=what, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=None if enabled else True)
