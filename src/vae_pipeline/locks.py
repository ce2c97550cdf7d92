"""An exclusive lock on a file that dies with its process.

Written here because nothing in the stack offers one: fsspec has no locks, and
the ``filelock`` package is not a dependency. ``fcntl.flock`` is released by the
operating system when the holder exits, ``kill -9`` included, so a crashed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import IO

from vae_pipeline.errors import InputDataError

_CONTENT = re.compile(r"(pid \d+)?")


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with this pid is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class LockHeld(Exception):  # noqa: N818 (a state, not an error)
    """Another process holds the lock; ``holder`` says which (``pid N``)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{holder} holds {path}")
        self.path = path
        self.holder = holder


class FileLock:
    """A non-blocking exclusive lock on ``path``, holding the holder's pid.

    The file is created if needed; an existing file that is not such a lock file
    (it holds anything but ``pid N``) is refused rather than overwritten.

    Args:
        path: The lock file.
        parameter: The parameter that names the path, for errors.
    """

    def __init__(self, path: Path, *, parameter: str) -> None:
        self.path = path
        self.parameter = parameter
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            LockHeld: Another process holds it.
            InputDataError: The path holds a file that is not a lock file.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file() and not _CONTENT.fullmatch(self.path.read_text()):
            raise InputDataError(  # never truncate a file this lock did not write
                f"parameter {self.parameter}: {self.path} is not a lock file of "
                "this project (it holds other data); choose another path"
            )
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockHeld(self.path, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock up (emptying the file); nothing if not held."""
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
