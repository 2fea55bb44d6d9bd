"""The C allocator's settings for training: freed activations are kept for the next step.

A CPU training step allocates and frees its activations and gradients anew: about 100 MB at 64×192,
batch 8, in blocks of up to 13 MB. glibc's ``malloc`` hands blocks that large back to the kernel (``mmap``
above a threshold, and ``trim`` of the heap's free top), so every step the kernel maps and zeroes the same
memory again: about 25,000 page faults a step, against about 500 once freed memory is kept for reuse.
"""
from __future__ import annotations

import ctypes
import platform
import sys

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 * 2**20     # glibc's largest allowed value: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 2**30          # keep up to 1 GiB of free memory at the heap's top for the next step
TOP_PAD = 64 * 2**20            # grow the heap 64 MiB at a time


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (process-wide; call once, at start-up).

    The process then holds on to its peak memory instead of returning it between steps. Returns False
    (and changes nothing) where the C library is not glibc.
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    done = [libc.mallopt(param, value) for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))]
    return all(d == 1 for d in done)
