"""Inflating a zip member straight into the caller's buffer, and its CRC-32: libdeflate when present, else zlib.

libdeflate (the `deflate` package) inflates a whole member about twice as fast as zlib. The package's Python
function returns a new bytearray per member, which the builder would then copy into one Arrow buffer; its C API
(`libdeflate_deflate_decompress`, exported by the same extension) writes into memory we give it, so each
class's images are inflated once, into the buffer Arrow takes as it is. ctypes releases the GIL for the call.
"""

from __future__ import annotations

import ctypes
import zlib

import numpy as np

try:
    import deflate
except ImportError:  # zlib gives the same bytes, slower
    deflate = None


class InflateError(Exception):
    """The member's data is not valid DEFLATE, or does not inflate to its announced size."""


def _libdeflate() -> ctypes.CDLL | None:
    """libdeflate's C API inside the `deflate` extension, or None (no package, or a build that hides it)."""
    if deflate is None:
        return None
    try:
        library = ctypes.CDLL(deflate._deflate.__file__)
        library.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        library.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
        library.libdeflate_deflate_decompress.restype = ctypes.c_int
        library.libdeflate_deflate_decompress.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        library.libdeflate_crc32.restype = ctypes.c_uint32
        library.libdeflate_crc32.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
    except (AttributeError, OSError):
        return None
    return library


LIBDEFLATE = _libdeflate()


class Inflater:
    """Inflates members into slices of one output array; one per reader (a decompressor is not thread-safe)."""

    def __init__(self):
        self._library = LIBDEFLATE
        self._decompressor = self._library.libdeflate_alloc_decompressor() if self._library else None
        self._written = ctypes.c_size_t()

    def inflate_into(self, data: np.ndarray, out: np.ndarray, at: int, size: int) -> None:
        """Inflate raw DEFLATE `data` into `out[at:at + size]`; InflateError unless it is exactly `size` bytes."""
        if self._decompressor is None or self._library is None:
            inflated = zlib.decompressobj(-15).decompress(data.data, size + 1)  # one byte more tells it is too long
            if len(inflated) != size:
                raise InflateError(f"inflates to {len(inflated):,} bytes, not {size:,}")
            out[at : at + size] = np.frombuffer(inflated, np.uint8)
            return
        status = self._library.libdeflate_deflate_decompress(
            self._decompressor, data.ctypes.data, data.size, out.ctypes.data + at, size, ctypes.byref(self._written)
        )
        # 0: success; 1: bad data; 2: short output (fewer bytes than announced); 3: more than announced.
        if status != 0 or self._written.value != size:
            reason = {1: "invalid DEFLATE data", 3: f"inflates to more than {size:,} bytes"}.get(status)
            raise InflateError(reason or f"inflates to {self._written.value:,} bytes, not {size:,}")

    def crc32(self, out: np.ndarray, at: int, size: int) -> int:
        if self._library is None:
            return zlib.crc32(out[at : at + size].data)
        return self._library.libdeflate_crc32(0, out.ctypes.data + at, size)

    def close(self) -> None:
        if self._decompressor and self._library:
            self._library.libdeflate_free_decompressor(self._decompressor)
            self._decompressor = None

    def __del__(self):
        self.close()
