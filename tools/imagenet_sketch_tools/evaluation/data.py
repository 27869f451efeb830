"""The rows to evaluate, read as Arrow: from a prepared `datasets.Dataset` or straight from an exported hub
package's parquet shards (a folder holding `data/*.parquet`, or `hf://datasets/NS/NAME`); and which of them
a run selects.

Metadata (label, wnid, file name) is read once for every row; image bytes are read per batch, in contiguous
runs of rows, inside the loader's worker processes, so no image is pickled between processes.
"""

from __future__ import annotations

import bisect
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import HfFileSystem

from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.evaluation.identity import identity

HF_PREFIX = "hf://"


@dataclass(frozen=True)
class Meta:
    """Per row of the whole source: ImageNet-1k label, wnid and the path `<wnid>/<file>`."""

    labels: np.ndarray  # int64
    wnids: list[str]
    paths: list[str]


class RowSource:
    """What the run needs of a source: its size, per-row metadata, an identity, and image bytes by row."""

    identity: str
    cheap_random_access = True  # whether reading a few scattered rows at the end costs little

    def __len__(self) -> int:
        raise NotImplementedError

    def meta(self) -> Meta:
        raise NotImplementedError

    def images(self, start: int, stop: int) -> list[bytes | None]:
        """The stored bytes of rows [start, stop)."""
        raise NotImplementedError

    def images_of(self, rows: np.ndarray) -> list[bytes | None]:
        """The bytes of `rows` (sorted), read as few contiguous runs."""
        out: list[bytes | None] = []
        for run in contiguous_runs(rows):
            out.extend(self.images(int(run[0]), int(run[-1]) + 1))
        return out

    def images_by_path(self, wanted: dict[int, str]) -> dict[str, bytes]:
        """The images of the rows asked for, keyed by their path (the report's thumbnails); undecodable skipped."""
        order = sorted(wanted)
        found = self.images_of(np.asarray(order, dtype=np.int64))
        return {wanted[row]: image for row, image in zip(order, found) if image is not None}


def contiguous_runs(rows: np.ndarray) -> list[np.ndarray]:
    if len(rows) == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    return np.split(rows, breaks)


def paths_of(table: pa.Table) -> list[str]:
    """Each row's `<wnid>/<file>`: the builder keeps that path, an export only the file name (as push_to_hub)."""
    image = table.column("image")
    files = [path for chunk in image.chunks for path in chunk.field("path").to_pylist()]
    return [f"{wnid}/{posixpath.basename(path or '')}" for wnid, path in zip(table.column("wnid").to_pylist(), files)]


def meta_of_table(table: pa.Table) -> Meta:
    wnids = table.column("wnid").to_pylist()
    labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
    known = label_of_wnid()
    # The label column must be the fixed table's index of the wnid; another labelling would shift every score.
    expected = np.fromiter((known.get(wnid, -1) for wnid in wnids), dtype=np.int64, count=len(wnids))
    if len(labels) and not np.array_equal(labels, expected):
        bad = int(np.flatnonzero(labels != expected)[0])
        raise UserError(
            f"row {bad} ({wnids[bad]}) has label {labels[bad]}, not its ImageNet-1k index {expected[bad]}; "
            "this is not a package exported by imagenet-sketch"
        )
    return Meta(labels, wnids, paths_of(table))


class DatasetSource(RowSource):
    """A prepared `datasets.Dataset` (as `imagenet_sketch.load()` returns it): its memory-mapped Arrow table."""

    def __init__(self, dataset):
        missing = {"image", "label", "wnid"} - set(dataset.column_names)
        if missing:
            raise UserError(f"the dataset has no column(s) {sorted(missing)}; expected image, label, wnid")
        self.arrow = dataset.with_format("arrow")
        self.identity = identity(dataset)

    def __len__(self) -> int:
        return len(self.arrow)

    def meta(self) -> Meta:
        return meta_of_table(self.arrow[:])

    def images(self, start: int, stop: int) -> list[bytes | None]:
        column = self.arrow[start:stop].column("image")
        return [content for chunk in column.chunks for content in chunk.field("bytes").to_pylist()]


class PackageSource(RowSource):
    """The shards of an exported package, in name order (train-00000-of-N first).

    Bytes are streamed: a read continues from where the last one ended, decoding pages as it goes (a row group
    of an export can be a whole 500 MB shard, so reading one whole for every batch would cost more than
    decoding the images). Each loader worker takes a contiguous span of batches, so its reads follow on.
    """

    cheap_random_access = False  # a far row is reached by streaming up to it (over the network for hf://)
    STREAM_ROWS = 32  # rows per record batch decoded from the stream
    BUFFER = 4 << 20  # bytes read ahead per column: the stream never holds a row group in memory

    def __init__(self, location: str):
        self.filesystem, self.files = parquet_files(location)
        self._opened: dict[str, pq.ParquetFile] = {}
        self._pid = os.getpid()
        self._groups: list[tuple[str, int]] = []  # (file, row group) in row order
        sizes = []
        for name in self.files:
            metadata = self._file(name).metadata
            for group in range(metadata.num_row_groups):
                self._groups.append((name, group))
                sizes.append(metadata.row_group(group).num_rows)
        self.group_starts = [0, *np.cumsum(sizes, dtype=np.int64).tolist()]  # first row of each group; total last
        self.identity = identity(self.files, self.filesystem)
        self._forget_stream()

    def _forget_stream(self) -> None:
        self._stream, self._position, self._pending = None, -1, []

    def __getstate__(self):
        # open files and streams stay behind: each worker opens its own (fsspec handles are not shareable)
        state = dict(self.__dict__)
        state.update(_opened={}, _stream=None, _position=-1, _pending=[])
        return state

    def _file(self, name: str) -> pq.ParquetFile:
        if self._pid != os.getpid():  # a forked worker: handles of the parent are not ours to use
            self._opened, self._pid = {}, os.getpid()
            self._forget_stream()
        if name not in self._opened:
            handle = self.filesystem.open(name, "rb") if self.filesystem else name
            self._opened[name] = pq.ParquetFile(handle, pre_buffer=False, buffer_size=self.BUFFER)
        return self._opened[name]

    def __len__(self) -> int:
        return self.group_starts[-1]

    def meta(self) -> Meta:
        tables = [self._file(name).read(columns=["image.path", "label", "wnid"]) for name in self.files]
        return meta_of_table(pa.concat_tables(tables))

    def _batches_from(self, group: int):
        for name, index in self._groups[group:]:
            columns = ["image.bytes"]
            for batch in self._file(name).iter_batches(self.STREAM_ROWS, [index], columns, use_threads=False):
                yield batch.column(0).field("bytes").to_pylist()

    def _seek(self, row: int) -> None:
        """Position the stream at `row`: onwards from where it is, else from the start of row's group."""
        if self._pid != os.getpid() or self._stream is None or row < self._position:
            self._file(self.files[0])  # resets the handles in a new process
            group = bisect.bisect_right(self.group_starts, row) - 1
            self._stream, self._position, self._pending = self._batches_from(group), self.group_starts[group], []
        while self._position < row:
            if not self._pending:
                self._pending = self._next_batch()
            skip = min(row - self._position, len(self._pending))
            self._pending, self._position = self._pending[skip:], self._position + skip

    def _next_batch(self) -> list[bytes | None]:
        assert self._stream is not None  # _seek opened it
        return next(self._stream)

    def images(self, start: int, stop: int) -> list[bytes | None]:
        self._seek(start)
        out: list[bytes | None] = []
        while len(out) < stop - start:
            if not self._pending:
                self._pending = self._next_batch()
            take = min(stop - start - len(out), len(self._pending))
            out.extend(self._pending[:take])
            self._pending = self._pending[take:]
        self._position = stop
        return out


def is_package(source: str) -> bool:
    """An exported hub package: `hf://datasets/...`, a local folder with parquet shards under `data/`, or such
    a folder at another fsspec URL (`s3://`, `gs://`, `file://`...; http(s) cannot list a folder)."""
    if source.startswith(HF_PREFIX):
        return not source.lower().endswith(".zip")  # a zip on the hub is an archive source, read by the builder
    if other_url(source):
        return not source.lower().endswith(".zip") and bool(glob_shards(source)[1])
    return os.path.isdir(os.path.join(source, "data")) and any(
        name.endswith(".parquet") for name in os.listdir(os.path.join(source, "data"))
    )


def parquet_files(location: str):
    """(filesystem or None for local, sorted shard paths) of a package."""
    if location.startswith(HF_PREFIX):
        filesystem = HfFileSystem()
        pattern = location[len(HF_PREFIX) :].rstrip("/") + "/data/*.parquet"
        try:
            files = sorted(filesystem.glob(pattern))
        except Exception as error:  # unknown repo, no network, no permission: one line saying which
            raise UserError(f"cannot list '{location}' ({type(error).__name__}: {error})") from error
    elif other_url(location):
        filesystem, files = glob_shards(location)
    else:
        filesystem = None
        folder = os.path.join(location, "data")
        files = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".parquet"))
    if not files:
        raise UserError(f"'{location}' holds no data/*.parquet; give an exported package or an archive")
    return filesystem, files


def other_url(source: str) -> bool:
    """A URL fsspec may list, other than hf:// and http(s):// (`C:\\x` is a Windows path, not a scheme)."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme not in ("http", "https", "hf")


def glob_shards(location: str):
    """(filesystem, sorted data/*.parquet paths) at an fsspec URL; none when it cannot be listed."""
    try:
        filesystem, root = fsspec.core.url_to_fs(location)
        return filesystem, sorted(filesystem.glob(root.rstrip("/") + "/data/*.parquet"))
    except (ImportError, ValueError, OSError):  # no fsspec backend for the scheme, or nothing there
        return None, []


def open_source(source=None, *, cache_dir: str | None = None) -> RowSource:
    """Rows of a `datasets.Dataset`, an exported package, or anything `imagenet_sketch.load()` takes
    (None: the release as load() finds it)."""
    if source is not None and not isinstance(source, (str, os.PathLike)):
        return DatasetSource(source)
    if source is not None and is_package(str(source)):
        return PackageSource(str(source))
    return DatasetSource(prepared(None if source is None else str(source), cache_dir))


def prepared(source: str | None, cache_dir: str | None):
    """The dataset of an archive, a folder or the release, prepared (once) in the datasets cache."""
    # The builder, the one place that prepares a source (downloading the release if need be): importing it
    # pulls in the whole download chain, which a package or a Dataset given here never needs.
    import imagenet_sketch

    return imagenet_sketch.load(source, cache_dir=cache_dir)


def select(meta: Meta, limit: int | None, classes: Sequence[str] | None) -> tuple[np.ndarray, str]:
    """The row indices to evaluate and how to say which: every row, the rows of `classes`, then `limit` rows
    spread evenly over them (every class keeps a share, unlike the first N rows, which would be a few classes)."""
    rows = np.arange(len(meta.labels), dtype=np.int64)
    said = []
    if classes:
        unknown = [wnid for wnid in classes if wnid not in label_of_wnid()]
        if unknown:
            raise UserError(f"--classes: {', '.join(unknown[:5])} not ImageNet-1k wnids (e.g. n01440764)")
        wanted = {label_of_wnid()[wnid] for wnid in classes}
        rows = rows[np.isin(meta.labels, list(wanted))]
        said.append(f"--classes: {len(wanted)} class(es)")
    if limit is not None and limit < len(rows):
        rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(np.int64)]
        said.append(f"--limit {limit}: evenly spaced rows")
    if len(rows) == 0:
        raise UserError("no images to evaluate: the source has none" + (" of those classes" if classes else ""))
    return rows, "; ".join(said) or f"all {len(meta.labels):,} images"
