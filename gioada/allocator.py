"""The C allocator's settings for training: freed activations are kept for the next step.

A CPU training step allocates and frees its activations and gradients anew: about 100 MB at 64×192,
batch 8, in blocks of up to 13 MB. glibc's ``malloc`` hands blocks that large back to the kernel (``mmap``
above a threshold, and ``trim`` of the heap's free top), so every step the kernel maps and zeroes the same
memory again: about 25,000 page faults a step, against about 500 once freed memory is kept for reuse.
A long-lived process (the app) hands it back when a run ends: :func:`release_freed_memory`.
"""
from __future__ import annotations

import ctypes
import os
import sys

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 * 2**20     # glibc's largest allowed value: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 2**30          # keep up to 1 GiB of free memory at the heap's top for the next step
TOP_PAD = 64 * 2**20            # grow the heap 64 MiB at a time


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (None elsewhere: musl, macOS, Windows)."""
    if sys.platform != "linux" or not hasattr(os, "confstr"):
        return None
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        return ctypes.CDLL("libc.so.6")
    except (OSError, ValueError):
        return None


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (process-wide; call once, at start-up).

    The process then holds on to its peak memory instead of returning it between steps. Returns False
    where the C library is not glibc, or where it refused the first setting (then nothing changed).
    """
    libc = _glibc()
    if libc is None or libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    return libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and libc.mallopt(M_TOP_PAD, TOP_PAD) == 1


def release_freed_memory() -> bool:
    """Hand the memory freed since the last run back to the system (glibc's ``malloc_trim``).

    Returns True when some was released."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
