"""Reading a remote zip: its end, where the directory lies, fetched in one request."""

from __future__ import annotations


class TailFirst:
    """A remote file whose last TAIL bytes are fetched in one request, the first time a read lands there.

    Finding a zip's directory takes three small reads near its end (end record, ZIP64 locator, the directory
    itself); served from one fetched tail they cost one round trip instead of three, and none more when the
    directory fits in the tail. Reads elsewhere go to the file as they are.
    """

    TAIL = 1 << 16

    def __init__(self, file):
        self._file = file
        self.size = file.size
        # A small zip's tail is a sixteenth of it: streaming its first class should not fetch most of the file.
        self._tail_start = max(0, self.size - min(self.TAIL, max(self.size // 16, 1024)))
        self._tail: bytes | None = None
        self._position = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._position = {0: 0, 1: self._position, 2: self.size}[whence] + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, length: int = -1) -> bytes:
        end = self.size if length is None or length < 0 else min(self.size, self._position + length)
        if self._position >= self._tail_start:
            content = self._fetched_tail()[self._position - self._tail_start : end - self._tail_start]
        else:
            self._file.seek(self._position)
            content = self._file.read(end - self._position)
        self._position += len(content)
        return content

    def _fetched_tail(self) -> bytes:
        if self._tail is not None:
            return self._tail
        self._file.seek(self._tail_start)
        tail: bytes = self._file.read(self.size - self._tail_start)
        self._tail = tail
        return tail

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()
