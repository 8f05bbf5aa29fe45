"""Never a hang: an error on one rank ends every rank (MPI_Abort) with a message that names the
rank and the error. Errors every rank raises at the same point (`CollectiveError`, or any
exception marked by `on_every_rank`) are left to the caller: each rank reports and exits."""

from __future__ import annotations

import contextlib
import functools
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from gpunet.distributed import world
from gpunet.distributed.comm import Communicator


@contextlib.contextmanager
def abort_on_error(comm: Communicator | None = None, what: str = "gpunet") -> Iterator[None]:
    """Around work that makes collective calls: an exception that escapes it on one rank
    (also KeyboardInterrupt) prints "rank R of N failed in WHAT: Error: message" and aborts
    every rank. `comm` None: the communicator `init()` made, if any, when the error happens."""
    try:
        yield
    except BaseException as exc:
        comm = comm if comm is not None else world.current()
        if comm is None or comm.size == 1 or getattr(exc, "collective", False) \
                or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            raise
        report(comm, what, exc)
        comm.abort(1)


def report(comm: Communicator, what: str, exc: BaseException) -> None:
    """The traceback, then one line naming the rank and the error, on stderr."""
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = " ".join(str(exc).split())
    print(f"gpunet.distributed: rank {comm.rank} of {comm.size} failed in {what}: "
          f"{type(exc).__name__}: {message}; aborting all ranks", file=sys.stderr, flush=True)


def guarded(what: str) -> Any:
    """Decorator for functions taking `distributed=comm`: with more than one rank the call runs
    under `abort_on_error`."""

    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            comm = kwargs.get("distributed")
            if comm is None or comm.size == 1:
                return fn(*args, **kwargs)
            with abort_on_error(comm, what):
                return fn(*args, **kwargs)

        return call

    return wrap
