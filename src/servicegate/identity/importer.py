"""Streaming import of identities from JSON Lines or CSV: validate, batch, upsert by id.

Memory stays constant (one batch at a time). Each batch is one transaction; an identity and
its addresses are written together or not at all. If the database refuses a batch, its rows
are retried one by one so only the offending rows are rejected. Every rejected row is reported
with its line number and the reason.

CSV columns (header row, any order, empty cell = null): id, juridicalType, firstName,
middleName, lastName, companyName, fullName, salutation, nameSuffix, idnumber, birthDate,
partyReferenceCode, emails and phoneNumbers (several separated by ';'), and per address N
(1..9): addressN.type, addressN.coAddress, addressN.street, addressN.houseNo,
addressN.houseNoExtension, addressN.zipCode, addressN.city, addressN.stateCode,
addressN.countryCode.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from servicegate.clock import utcnow
from servicegate.identity.parse_pool import parsed_chunks
from servicegate.identity.parsing import Parsed, Record, Row
from servicegate.identity.store import IdentityStore, Refused
from servicegate.identity_shape import ADDRESS_MEMBERS

Format = Literal["jsonl", "csv"]
NAME_COLUMNS = ("firstName", "middleName", "lastName", "companyName", "fullName", "salutation",
                "nameSuffix")
TOP_COLUMNS = ("id", "juridicalType", "idnumber", "birthDate", "partyReferenceCode", "emails",
               "phoneNumbers")
MAX_ADDRESSES_CSV = 9
MAX_LINE_BYTES = 1_048_576
_ADDRESS_COLUMN = re.compile(r"^address([1-9])\.([A-Za-z]+)$")
KEEP_REJECTIONS = 10_000  # the summary keeps this many; every one is reported as it happens


class ImportFormatError(ValueError):
    """The file cannot be read at all (unknown format, bad CSV header)."""


@dataclass
class Rejection:
    line: int
    reason: str


@dataclass
class Summary:
    imported: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> Rejection:
        self.rejected += 1
        r = Rejection(line, reason)
        if len(self.rejections) < KEEP_REJECTIONS:
            self.rejections.append(r)
        return r


def detect_format(name: str, given: str | None) -> Format:
    if given:
        if given not in ("jsonl", "csv"):
            raise ImportFormatError(f"unknown format {given!r}; use jsonl or csv")
        return given  # type: ignore[return-value]
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json", ".jsonl.txt")) or name == "-":
        return "jsonl"
    raise ImportFormatError(f"cannot tell the format of {name!r}; name it .jsonl or .csv "
                            "or pass --format")


def jsonl_records(stream: IO[bytes]) -> Iterator[Record]:
    for line_no, raw in enumerate(stream, start=1):
        if len(raw) > MAX_LINE_BYTES:
            yield line_no, None, f"line longer than {MAX_LINE_BYTES} bytes"
            continue
        if not raw.strip():
            continue
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        yield line_no, raw, None


def _csv_plan(header: list[str]) -> list[tuple[str, int | None, str]]:
    """For each column: (kind, address index, field)."""
    plan: list[tuple[str, int | None, str]] = []
    known_top = {c.lower(): c for c in TOP_COLUMNS}
    known_name = {c.lower(): c for c in NAME_COLUMNS}
    known_addr = {c.lower(): c for c in ADDRESS_MEMBERS}
    unknown = []
    for col in header:
        key = col.strip()
        low = key.lower()
        m = _ADDRESS_COLUMN.match(key)
        if low in known_top:
            plan.append(("top", None, known_top[low]))
        elif low in known_name:
            plan.append(("name", None, known_name[low]))
        elif m and m.group(2).lower() in known_addr:
            plan.append(("address", int(m.group(1)) - 1, known_addr[m.group(2).lower()]))
        else:
            unknown.append(col)
            plan.append(("unknown", None, col))
    if unknown:
        raise ImportFormatError(f"unknown CSV columns {unknown}; see docs/identity.md")
    if ("top", None, "id") not in plan:
        raise ImportFormatError("the CSV header needs an id column")
    return plan


def csv_records(stream: IO[bytes]) -> Iterator[Record]:
    lines = (raw.decode("utf-8-sig" if i == 0 else "utf-8", errors="replace")
             for i, raw in enumerate(stream))
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    plan = _csv_plan(header)
    last_line = reader.line_num
    for row in reader:
        start, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(plan):
            yield start, None, f"has {len(row)} cells, the header has {len(plan)}"
            continue
        yield start, _csv_identity(plan, row), None


def _csv_identity(plan: list[tuple[str, int | None, str]], row: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"name": {}}
    addresses: dict[int, dict[str, Any]] = {}
    for (kind, index, name), cell in zip(plan, row, strict=True):
        value: Any = cell if cell != "" else None
        if kind == "top":
            if name in ("emails", "phoneNumbers"):
                value = [v.strip() for v in cell.split(";") if v.strip()]
            elif name == "juridicalType" and value is not None:
                value = int(value) if value.strip().lstrip("-").isdigit() else value
            data[name] = value
        elif kind == "name":
            data["name"][name] = value
        else:
            assert index is not None
            addresses.setdefault(index, {})[name] = value
    data["addresses"] = [addresses[i] for i in sorted(addresses)
                         if any(v is not None for v in addresses[i].values())]
    return data


@contextmanager
def bulk_garbage_collection(young: int = 20_000) -> Iterator[None]:
    """A load allocates millions of short-lived, acyclic objects (freed by reference counting)
    and keeps a batch or two alive at a time. With the default thresholds the cyclic
    collector runs every 700 allocations and, as batches age into the oldest generation,
    repeatedly walks every object the process holds (the whole of SQLAlchemy, pydantic...).
    During the load: what exists now is frozen out of collection and young objects are
    collected less often; both are restored afterwards."""
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], young), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


Progress = Callable[[Summary], None]
Report = Callable[[Rejection], None]
Item = tuple[int, Row, list[Row]]  # line, identity row, its address rows


class Importer:
    """Parses records `batch_size` at a time (in `workers` processes; 0 = in this one) and
    writes each batch in one transaction, in file order, one write in flight while the next
    batches are parsed. `new`: the identities table was empty when the load started (see
    `bulk.deferred_indexes`), so batches are first written as plain inserts.

    With workers > 0 the worker processes are started with multiprocessing's `spawn`, which
    imports the main module again: a script calling this needs the
    `if __name__ == "__main__":` guard (the `servicegate` command has it)."""

    def __init__(self, store: IdentityStore, batch_size: int = 1000,
                 on_reject: Report | None = None, on_batch: Progress | None = None,
                 workers: int = 0, new: bool = False) -> None:
        self.store = store
        self.batch_size = batch_size
        self.workers = workers
        self.new = new
        self.on_reject = on_reject or (lambda _r: None)
        self.on_batch = on_batch or (lambda _s: None)
        self.summary = Summary()
        self._pending: asyncio.Task[None] | None = None

    def _reject(self, line: int, reason: str) -> None:
        self.on_reject(self.summary.reject(line, reason))

    async def run(self, records: Iterable[Record]) -> Summary:
        with bulk_garbage_collection():
            stamp = utcnow()
            async for parsed in parsed_chunks(records, self.batch_size, stamp, self.workers):
                await self._take(parsed)
            await self._drain()
        return self.summary

    async def _take(self, parsed: Parsed) -> None:
        for line, reason in parsed.rejections:
            self._reject(line, reason)
        batch: list[Item] = []
        ids: set[str] = set()
        for item in parsed.rows:
            key = item[1][0]
            if key in ids:  # a later line for the same id wins: write the earlier first
                await self._flush(batch)
                batch, ids = [], set()
            ids.add(key)
            batch.append(item)
        await self._flush(batch)

    async def _flush(self, batch: list[Item]) -> None:
        """Start writing this batch; the previous one is awaited first (one write in flight,
        so parsing the next batch overlaps with the database writing this one, in order)."""
        if not batch:
            return
        await self._drain()
        self._pending = asyncio.create_task(self._write(batch))

    async def _drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def _write(self, items: list[Item]) -> None:
        rows = [row for _, row, _ in items]
        addresses = [a for _, _, its in items for a in its]
        # into a table that was empty, ids are first taken to be new (plain inserts); an id
        # seen in an earlier batch refuses that, and the batch is upserted instead
        for new in (True, False) if self.new else (False,):
            try:
                await self.store.write_rows(rows, addresses, bulk=True, new=new)
            except Refused:
                continue
            self.summary.imported += len(items)
            self.on_batch(self.summary)
            return
        for line, row, its in items:  # isolate the rows the database refuses
            try:
                await self.store.write_rows([row], its)
                self.summary.imported += 1
            except Refused as exc:
                self._reject(line, f"refused by the database: {exc}")
        self.on_batch(self.summary)
