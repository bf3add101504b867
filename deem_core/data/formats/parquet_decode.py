"""Decode row groups of an untrusted Parquet file in a process of its own, under a memory cap.

Run as a script by :class:`deem_core.data.formats.tables.ParquetTable` (it imports nothing of ``deem_core``, so the
process starts in a fraction of a second). The sizes a Parquet footer states are the uploader's words: forged to 0,
they let a 33 KB file decode a 1,000 MiB value inside the server's own process (4.1 GB; attack round 7). Here an
allocation past the cap fails in this process alone; the caller reports it as a refusal.

    python parquet_decode.py FILE OUT SPEC

``SPEC`` (a JSON file): ``columns`` (names), ``dictionary`` (the text columns read as dictionaries), ``steps`` (``["span",
[groups]]``: row groups read together, their dictionaries unified; ``["iter", group]``: one large group read a batch
at a time), ``rows`` (rows per batch), ``limit_rows`` (stop once this many are written; null: all) and ``memory``
(bytes of data segment the process may hold, ``RLIMIT_DATA``), ``output`` (the most bytes it may write) and
``seconds`` (its CPU time, ``RLIMIT_CPU``; null: none). The batches go to ``OUT`` as an Arrow IPC stream (a text
column's dictionary may change from batch to batch). Exit status: 0 done, 3 unreadable (the reason on stderr), 4
over the memory cap, 5 over the output cap.
"""

from __future__ import annotations

import ctypes
import json
import resource
import signal
import sys

UNREADABLE, MEMORY, OUTPUT = 3, 4, 5
#: what pyarrow says when the cap stops an allocation other than a buffer's (a thread's stack, C++'s new)
OUT_OF_MEMORY = ("Failed to launch worker thread", "Resource temporarily unavailable", "bad_alloc",
                 "Cannot allocate memory", "Out of memory")


def main(argv: list[str]) -> int:
    with open(argv[3], encoding="utf-8") as orders:
        spec = json.load(orders)
    path, out = argv[1], argv[2]
    cap = int(spec["memory"])
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    if spec.get("seconds"):  # its own limit too: the caller's timeout dies with the caller (attack round 8)
        limit = int(spec["seconds"]) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (limit, limit))
    try:  # killed with the process that started it (a server stopped mid-read left it decoding for its 10 minutes)
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    try:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415

        # one thread: each reserves a stack inside the cap, more of them on a machine of more cores
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
        parquet = pq.ParquetFile(path, read_dictionary=spec["dictionary"] or None)
        columns, rows, limit = list(spec["columns"]), int(spec["rows"]), spec.get("limit_rows")
        written, writer = 0, None
        with pa.OSFile(out, "wb") as sink:
            for kind, groups in spec["steps"]:
                if kind == "span":
                    table = parquet.read_row_groups(groups, columns=columns, use_threads=False)
                    if len(groups) > 1:
                        table = table.unify_dictionaries().combine_chunks()
                    batches = table.to_batches(max_chunksize=rows)
                else:
                    batches = parquet.iter_batches(batch_size=rows, row_groups=[groups], columns=columns,
                                                   use_threads=False)
                for batch in batches:
                    batch = batch.replace_schema_metadata(None)
                    if writer is None:
                        writer = pa.ipc.new_stream(sink, batch.schema)
                    writer.write_batch(batch)
                    if sink.tell() > int(spec["output"]):  # (a batch is small; all of them have no other bound)
                        return OUTPUT
                    written += batch.num_rows
                    if limit is not None and written >= limit:
                        break
                if limit is not None and written >= limit:
                    break
            if writer is not None:
                writer.close()
    except MemoryError:  # (pyarrow's ArrowMemoryError is one)
        return MEMORY
    except Exception as exc:  # noqa: BLE001 - the reason goes to the caller, which refuses the file with it
        if any(sign in str(exc) for sign in OUT_OF_MEMORY):
            return MEMORY
        print(f"{type(exc).__name__}: {exc}"[:2000], file=sys.stderr)
        return UNREADABLE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
