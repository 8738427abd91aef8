"""Push batches into a consumer that pulls them: a writer for code that produces batches one by
one (hop 1) in front of an API that reads a ``RecordBatchReader`` (``write_deltalake``).

The consumer runs in a thread; at most ``depth`` batches wait between the two, so a partition
of any size streams through in bounded memory. Nothing is committed unless :meth:`close` is
reached: :meth:`abort` makes the reader raise, and the consumer fails before its commit.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

_END = object()
_ABORT = object()


class StreamAborted(RuntimeError):
    """Raised into the consumer when the producer failed."""


class BatchStream:
    """``write_batch``/``write_table`` on one side, a ``RecordBatchReader`` on the other."""

    def __init__(
        self,
        schema: pa.Schema,
        consume: Callable[[pa.RecordBatchReader], None],
        prepare: Callable[[pa.RecordBatch], pa.RecordBatch] = lambda batch: batch,
        depth: int = 4,
    ) -> None:
        self.schema = schema
        self.rows = 0
        self._consume = consume
        self._prepare = prepare
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def started(self) -> bool:
        """Whether any row was written (the consumer starts with the first one)."""
        return self._thread is not None

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        prepared = self._prepare(batch)
        if self._thread is None:
            reader = pa.RecordBatchReader.from_batches(self.schema, self._batches())
            self._thread = threading.Thread(target=self._run, args=(reader,), daemon=True)
            self._thread.start()
        self._put(prepared)
        self.rows += batch.num_rows

    def write_table(self, table: pa.Table) -> None:
        for batch in table.to_batches():
            self.write_batch(batch)

    def close(self) -> None:
        """End the stream and wait for the consumer; raise what it raised."""
        if self._thread is None:
            return
        self._put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Make the consumer fail (nothing is committed) and wait for it."""
        if self._thread is None:
            return
        with contextlib.suppress(BaseException):  # the consumer may have stopped already
            self._put(_ABORT)
        self._thread.join()

    def _run(self, reader: pa.RecordBatchReader) -> None:
        try:
            self._consume(reader)
        except BaseException as error:
            self._error = error

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if item is _ABORT:
                raise StreamAborted("the partition's producer failed")
            yield item  # type: ignore[misc]

    def _put(self, item: object) -> None:
        assert self._thread is not None
        while True:
            if not self._thread.is_alive():
                raise self._error or RuntimeError("the partition writer stopped")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
