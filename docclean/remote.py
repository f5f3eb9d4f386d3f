"""Archives in object storage (``s3://bucket/prefix``), through a local mirror.

A run never writes to the bucket directly: everything docclean guarantees on a local folder (staged
files, one atomic journal, the run lock, recovery) keeps working on a local *mirror* of the bucket, and
the bucket is then brought up to date in an order that readers can rely on.

A session (`session`, used by `run`) does:

1. take the remote lock (``_lock.json``: owner, expiry; refreshed while the session lives);
2. finish or undo an interrupted publish (below);
3. sync the bucket down into the mirror, incrementally (a file is fetched again only when its size or
   modification time in the bucket changed since the last sync, or the local copy was touched);
4. the run works on the mirror, as on any local archive;
5. publish what the mirror changed: a plan ``_publish/<run>.json`` (uploads, overwrites, deletes), a copy
   of every object it will overwrite (``_publish/<run>/prev/...``), then data parts, state parts and
   reports, then state manifests and other files overwritten in place, then ``runs/run-<run>.parquet``;
   then the commit point, one PUT of the plan marked ``committed``; then deletions (files the run
   replaced); then the plan and its copies are removed.

What a reader of the bucket sees (`open_dataset`, `docclean inspect/show/export`): before the commit point
the plan hides the run's uploads; after it, the files the run replaced. Readers list the plans before and
after listing the files and list again if a publish moved meanwhile, so they see the archive as it was
before a run or as it is after it, never a half. (A tool that reads the bucket's Parquet files without
docclean sees new parts before their ``runs`` row, and replaced files until they are deleted.)

An interrupted publish is finished by the next session on the machine that has its mirror (the plan is
also kept locally, in ``_remote/pending.json``); past its commit point anyone rolls it forward; otherwise
any other writer undoes it (deletes its new files, restores the overwritten ones), and a later run cleans
that run's documents again. The bucket is the truth: what the mirror holds that was never published is
dropped at the next sync, so no document is ever archived twice.

The lock is best effort: pyarrow's S3 filesystem offers no conditional write, so two writers that start
within the same fraction of a second could both believe they hold it. The lock is read back after a pause
and checked again before the commit point, which narrows that window without closing it. Run one writer
per archive (a schedule with concurrency 1, as the deployment has).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from .archive import SCHEMAS, ArchiveError, _check_version, write_bytes_atomic

REMOTE_SCHEMES = ("s3://",)
# What a sync brings down and a publish sends up; the rest of the mirror (_txn, _lock, _remote) is local.
SYNCED_FOLDERS = ("documents", "duplicates", "rejects", "runs", "_state", "reports")
PART_TABLES = ("documents", "duplicates", "rejects")
LOCK_OBJECT = "_lock.json"
PUBLISH_FOLDER = "_publish"
CHUNK = 8 * 1024 * 1024

Log = Callable[[str], None]
T = TypeVar("T")


def is_remote(path) -> bool:
    return isinstance(path, str) and path.lower().startswith(REMOTE_SCHEMES)


# --------------------------------------------------------------------------------------------------
# Where an archive lives in the bucket
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """``s3://bucket/prefix?endpoint_override=host:port&scheme=http`` resolved by pyarrow (the endpoint
    can also come from AWS_ENDPOINT_URL; credentials from the usual AWS variables or profile)."""

    url: str
    fs: pafs.FileSystem
    base: str  # bucket/prefix

    def key(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def uri(self, rel: str) -> str:
        """A self-contained URI of one file (with the endpoint query), for code that takes a path."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{self.base}/{rel}" + (f"?{parts.query}" if parts.query else "")

    @property
    def endpoint(self) -> str | None:
        query = dict(p.split("=", 1) for p in urlsplit(self.url).query.split("&") if "=" in p)
        return query.get("endpoint_override") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def locate(url: str) -> Location:
    try:
        fs, base = pafs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArchiveError(f"cannot open {url}: {exc}") from exc
    return Location(url, fs, base.rstrip("/"))


@dataclass(frozen=True)
class RemoteFile:
    size: int
    mtime_ns: int


def list_files(loc: Location, folder: str = "") -> dict[str, RemoteFile]:
    """Files under ``folder`` of the archive, by path relative to the archive."""
    root = loc.key(folder).rstrip("/") if folder else loc.base
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    out = {}
    for info in loc.fs.get_file_info(selector):
        if info.type == pafs.FileType.File:
            out[info.path[len(loc.base) + 1:]] = RemoteFile(info.size, info.mtime_ns or 0)
    return out


def _read_json(loc: Location, rel: str) -> dict | None:
    try:
        with loc.fs.open_input_stream(loc.key(rel)) as fh:
            return json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:  # not JSON (a foreign object): treated as absent; a network error is raised
        return None


def _put_bytes(loc: Location, rel: str, data: bytes) -> None:
    with loc.fs.open_output_stream(loc.key(rel)) as out:
        out.write(data)


def _delete(loc: Location, rel: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        loc.fs.delete_file(loc.key(rel))


def _plans(loc: Location) -> dict[str, dict]:
    """Publishes under way: ``_publish/<run>.json``, each with its uploads, deletes and ``committed``."""
    plans = {}
    for rel in list_files(loc, PUBLISH_FOLDER):
        if rel.count("/") == 1 and rel.endswith(".json"):
            plan = _read_json(loc, rel)
            if plan is not None:
                plans[plan["run_id"]] = plan
    return plans


def _hidden_by(plans: dict[str, dict]) -> set[str]:
    """Before its commit point a publish hides what it uploads; after it, what it deletes."""
    return {rel for plan in plans.values() for rel in (plan["deletes"] if plan.get("committed") else plan["uploads"])}


def snapshot(loc: Location, folders: tuple[str, ...] = ("",), attempts: int = 20) -> dict[str, RemoteFile]:
    """The files of ``folders`` that a reader may see: the archive before or after each publish under
    way, never between. The publishes are read before and after the listing; a publish that began,
    committed or ended meanwhile makes it list again."""
    for _ in range(attempts):
        before = _plans(loc)
        listing: dict[str, RemoteFile] = {}
        for folder in folders:
            listing.update(list_files(loc, folder))
        if _plans(loc) == before:
            hidden = _hidden_by(before)
            return {rel: info for rel, info in listing.items()
                    if rel.split("/", 1)[0] in SYNCED_FOLDERS and not rel.rsplit("/", 1)[-1].startswith(".")
                    and rel not in hidden}
        time.sleep(0.2)
    raise ArchiveError(f"{loc.url} kept changing while being listed ({attempts} attempts); try again")


# --------------------------------------------------------------------------------------------------
# Reading the bucket directly
# --------------------------------------------------------------------------------------------------


def _visible_table_files(loc: Location, name: str) -> list[str]:
    return sorted(rel for rel in snapshot(loc, (name,)) if rel.endswith(".parquet"))


def _check_exists(loc: Location) -> None:
    if loc.fs.get_file_info(loc.base).type == pafs.FileType.NotFound:
        raise ArchiveError(f"no archive at {loc.url}")


def open_dataset(url: str, table: str = "documents") -> ds.Dataset:
    """Table ``table`` of the archive at ``url`` as a pyarrow dataset over the bucket (published runs only)."""
    loc = locate(url)
    _check_exists(loc)
    files = _visible_table_files(loc, table)
    schema = SCHEMAS[table]
    if not files:
        return ds.dataset(schema.empty_table())
    _check_version(loc.key(files[0]), filesystem=loc.fs)
    return ds.dataset([loc.key(f) for f in files], schema=schema, format="parquet", filesystem=loc.fs)


class ReadView:
    """What `docclean inspect` needs of an archive (``root``, ``files(name)``), over the bucket: each file
    is a self-contained URI that pyarrow opens (with the endpoint in its query)."""

    def __init__(self, url: str):
        self.loc = locate(url)
        _check_exists(self.loc)
        self.root = url

    def files(self, name: str) -> list[str]:
        return [self.loc.uri(rel) for rel in _visible_table_files(self.loc, name)]


# --------------------------------------------------------------------------------------------------
# The remote lock
# --------------------------------------------------------------------------------------------------


class RemoteLock:
    """``_lock.json`` in the archive: who writes, which run, until when. Refreshed by a thread while held,
    so only a writer that died leaves it, and only until it expires."""

    def __init__(self, loc: Location, ttl: float = 300.0, timeout: float = 3600.0, log: Log = lambda m: None,
                 settle: float = 0.25):
        self.loc, self.ttl, self.timeout, self.log, self.settle = loc, ttl, timeout, log, settle
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        body = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                "expires_at": time.time() + self.ttl,
                "expires_at_utc": datetime.fromtimestamp(time.time() + self.ttl, timezone.utc).isoformat()}
        _put_bytes(self.loc, LOCK_OBJECT, json.dumps(body).encode())

    def holder(self) -> dict | None:
        return _read_json(self.loc, LOCK_OBJECT)

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        warned = False
        while True:
            held = self.holder()
            if time.monotonic() > deadline + self.settle * 4:  # lost every race to other writers this long
                raise ArchiveError(f"could not take the lock {self.loc.url}/{LOCK_OBJECT} (last holder: "
                                   f"{(held or {}).get('owner')})")
            if held and held.get("owner") != self.owner and held.get("expires_at", 0) > time.time():
                if time.monotonic() > deadline:
                    raise ArchiveError(f"another docclean run ({held.get('owner')}) holds {self.loc.url}/{LOCK_OBJECT} "
                                       f"until {held.get('expires_at_utc')} (waited {self.timeout:.0f} s)")
                if not warned:
                    self.log(f"waiting for {held.get('owner')} to release {self.loc.url}/{LOCK_OBJECT}")
                    warned = True
                time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
                continue
            if held and held.get("owner") != self.owner:
                self.log(f"taking over the expired lock of {held.get('owner')} on {self.loc.url}")
            self._write()
            time.sleep(self.settle)  # a writer that raced us has overwritten it by now: read back
            if (self.holder() or {}).get("owner") == self.owner:
                break
        self._thread = threading.Thread(target=self._refresh, name="docclean-s3-lock", daemon=True)
        self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl / 4)):
            with contextlib.suppress(OSError):
                self._write()

    def check(self) -> None:
        """Raise unless the lock is still ours (called before the commit point of a publish)."""
        held = self.holder()
        if (held or {}).get("owner") != self.owner:
            raise ArchiveError(f"lost the lock on {self.loc.url} to {(held or {}).get('owner')}; not publishing")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            if (self.holder() or {}).get("owner") == self.owner:
                _delete(self.loc, LOCK_OBJECT)

    def __enter__(self) -> "RemoteLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# --------------------------------------------------------------------------------------------------
# The local mirror
# --------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    from .config import cache_dir

    return cache_dir() / "s3"


def mirror_path(loc: Location, cache_dir: str | Path | None = None) -> Path:
    """``<cache>/<bucket>/<prefix>``; with a non-AWS endpoint ``<cache>/<host_port>/<bucket>/<prefix>``, so
    the same bucket name on two servers never shares a mirror."""
    root = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()).absolute()
    endpoint = loc.endpoint
    if endpoint:
        root = root / endpoint.split("://", 1)[-1].replace(":", "_").replace("/", "_")
    return root / loc.base


def _local_stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _upload_order(rel: str, overwrites: set[str]) -> tuple[int, str]:
    if rel.startswith("runs/"):
        return 3, rel  # the commit point: last
    if rel in overwrites or rel.endswith(".json"):
        return 2, rel  # manifests and other files overwritten in place, once the parts they name are there
    return (0 if rel.split("/", 1)[0] in PART_TABLES else 1), rel  # data parts, then state parts and reports


class Mirror:
    """A local copy of a remote archive, with what was last synced (``_remote/synced.json``: remote size
    and mtime, local size and mtime of each file) and an unfinished publish (``_remote/pending.json``)."""

    def __init__(self, url: str, cache_dir: str | Path | None = None, log: Log = lambda m: None):
        self.loc = locate(url)
        self.root = mirror_path(self.loc, cache_dir)
        self.meta = self.root / "_remote"
        self.log = log
        self.lock: RemoteLock | None = None

    # -- bookkeeping ----------------------------------------------------------------------------------
    def _load(self, name: str) -> dict | None:
        path = self.meta / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def _save(self, name: str, data: dict) -> None:
        write_bytes_atomic(json.dumps(data, sort_keys=True).encode(), self.meta / name)

    def _local_files(self) -> dict[str, list[int]]:
        out = {}
        for folder in SYNCED_FOLDERS:
            base = self.root / folder
            if base.is_dir():
                for p in base.rglob("*"):
                    if p.is_file() and not p.name.startswith("."):
                        out[p.relative_to(self.root).as_posix()] = _local_stat(p)
        return out

    # -- down -----------------------------------------------------------------------------------------
    def _download(self, rel: str) -> None:
        dst = self.root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")  # recover() removes a torn one
        try:
            with self.loc.fs.open_input_stream(self.loc.key(rel)) as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)

    def sync_down(self) -> dict[str, int]:
        """Make the mirror equal to what readers see in the bucket. Never while a publish is pending."""
        if self._load("pending.json"):
            raise ArchiveError(f"a publish from {self.root} is pending; finish it first")
        listing = snapshot(self.loc)
        record = (self._load("synced.json") or {}).get("files", {})
        new_record, done = {}, {"downloaded": 0, "kept": 0, "removed": 0}
        for rel, info in sorted(listing.items()):
            remote = [info.size, info.mtime_ns]
            known = record.get(rel)
            if known and known["remote"] == remote and _local_stat(self.root / rel) == known["local"]:
                done["kept"] += 1
            else:
                self._download(rel)
                done["downloaded"] += 1
            new_record[rel] = {"remote": remote, "local": _local_stat(self.root / rel)}
        for rel in self._local_files():
            if rel not in listing:  # never published (a dropped run) or deleted in the bucket
                (self.root / rel).unlink()
                done["removed"] += 1
        self._save("synced.json", {"url": self.loc.url, "files": new_record})
        return done

    # -- up -------------------------------------------------------------------------------------------
    def plan_publish(self) -> dict | None:
        """What the mirror changed since the last sync, in publishing order; None when nothing did."""
        record = (self._load("synced.json") or {}).get("files", {})
        local = self._local_files()
        changed = [rel for rel, st in local.items() if rel not in record or record[rel]["local"] != st]
        deletes = sorted(rel for rel in record if rel not in local)
        if not changed and not deletes:
            return None
        overwrites = {rel for rel in changed if rel in record}
        uploads = sorted(changed, key=lambda rel: _upload_order(rel, overwrites))
        markers = [rel[len("runs/run-"):-len(".parquet")] for rel in uploads if rel.startswith("runs/run-")]
        run_id = max(markers) if markers else f"publish-{uuid.uuid4().hex[:8]}"
        return {"run_id": run_id, "uploads": uploads, "overwrites": sorted(overwrites), "deletes": deletes,
                "base": {rel: r["remote"] for rel, r in record.items()}}

    def _upload(self, rel: str) -> None:
        with open(self.root / rel, "rb") as src, self.loc.fs.open_output_stream(self.loc.key(rel)) as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)

    def publish(self) -> dict | None:
        plan = self.plan_publish()
        if plan is None:
            return None
        self._save("pending.json", plan)  # before anything reaches the bucket: the next run can finish it
        self._execute(plan)
        return plan

    def _execute(self, plan: dict) -> None:
        loc, run_id = self.loc, plan["run_id"]
        plan_rel = f"{PUBLISH_FOLDER}/{run_id}.json"
        public = {k: plan[k] for k in ("run_id", "uploads", "overwrites", "deletes")}
        public["owner"] = self.lock.owner if self.lock is not None else None
        _put_bytes(loc, plan_rel, json.dumps(public).encode())  # from here on, readers ignore the uploads
        for rel in plan["overwrites"]:  # the previous version, for whoever has to undo this publish
            prev = f"{PUBLISH_FOLDER}/{run_id}/prev/{rel}"
            if loc.fs.get_file_info(loc.key(prev)).type == pafs.FileType.NotFound:  # a rerun keeps the first copy
                with contextlib.suppress(FileNotFoundError):
                    loc.fs.copy_file(loc.key(rel), loc.key(prev))
        for rel in plan["uploads"]:
            self._upload(rel)
        if self.lock is not None:
            self.lock.check()
        # The commit point: one PUT of the plan, now saying committed (readers switch to the new files).
        _put_bytes(loc, plan_rel, json.dumps({**public, "committed": True}).encode())
        for rel in plan["deletes"]:
            _delete(loc, rel)
        self._finish(plan)

    def _finish(self, plan: dict) -> None:
        loc, run_id = self.loc, plan["run_id"]
        with contextlib.suppress(FileNotFoundError, OSError):
            loc.fs.delete_dir(loc.key(f"{PUBLISH_FOLDER}/{run_id}"))
        _delete(loc, f"{PUBLISH_FOLDER}/{run_id}.json")
        # The bucket now holds what the mirror holds: record it, so the next sync fetches nothing back.
        listing = snapshot(loc)
        self._save("synced.json", {"url": loc.url, "files": {
            rel: {"remote": [info.size, info.mtime_ns], "local": _local_stat(self.root / rel)}
            for rel, info in listing.items() if (self.root / rel).exists()}})
        (self.meta / "pending.json").unlink(missing_ok=True)

    def _undo(self, plan: dict) -> None:
        """Take back a publish that never reached its commit point (someone else's, or ours gone stale)."""
        loc, run_id = self.loc, plan["run_id"]
        for rel in plan["overwrites"]:
            prev = f"{PUBLISH_FOLDER}/{run_id}/prev/{rel}"
            if loc.fs.get_file_info(loc.key(prev)).type == pafs.FileType.File:
                loc.fs.copy_file(loc.key(prev), loc.key(rel))
        for rel in plan["uploads"]:
            if rel not in plan["overwrites"]:
                _delete(loc, rel)
        with contextlib.suppress(FileNotFoundError, OSError):
            loc.fs.delete_dir(loc.key(f"{PUBLISH_FOLDER}/{run_id}"))
        _delete(loc, f"{PUBLISH_FOLDER}/{run_id}.json")

    def recover(self) -> dict[str, int]:
        """Under the lock: finish every publish past its commit point, finish our own interrupted publish,
        undo the others (a writer that died, elsewhere)."""
        done = {"finished": 0, "rolled_forward": 0, "undone": 0, "dropped": 0}
        pending = self._load("pending.json")
        for run_id, plan in sorted(_plans(self.loc).items()):
            ours = bool(pending) and pending["run_id"] == run_id
            if plan.get("committed"):  # only its deletions may be missing
                self.log(f"finishing the deletions of run {run_id}, published by {plan.get('owner')}")
                for rel in plan["deletes"]:
                    _delete(self.loc, rel)
                if ours:
                    self._finish(pending)
                else:
                    self._finish_foreign(run_id)
                done["rolled_forward"] += 1
            elif ours:
                self.log(f"finishing the interrupted publish of run {run_id} to {self.loc.url}")
                self._execute(pending)
                done["finished"] += 1
            else:
                self.log(f"undoing the interrupted publish of run {run_id} by {plan.get('owner')}")
                self._undo(plan)
                done["undone"] += 1
            if ours:
                pending = None
        if pending:  # our publish had not reached the bucket, or was finished or undone meanwhile
            now = {rel: [i.size, i.mtime_ns] for rel, i in snapshot(self.loc).items()}
            if now == pending["base"]:
                self.log(f"publishing run {pending['run_id']} to {self.loc.url} (interrupted before it started)")
                self._execute(pending)
                done["finished"] += 1
            else:
                # The sync brings the mirror back to the bucket; documents of a run that was not published
                # are cleaned again by a later run, never archived twice.
                self.log(f"not publishing run {pending['run_id']} again: {self.loc.url} changed since")
                (self.meta / "pending.json").unlink()
                done["dropped"] += 1
        return done

    def _finish_foreign(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.loc.fs.delete_dir(self.loc.key(f"{PUBLISH_FOLDER}/{run_id}"))
        _delete(self.loc, f"{PUBLISH_FOLDER}/{run_id}.json")


# --------------------------------------------------------------------------------------------------
# Sessions: what `docclean run` and `docclean verify` do with an s3:// archive
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def session(url: str, archive_config=None, log: Log = lambda m: None, lock_timeout: float | None = None) -> Iterator[Mirror]:
    """Lock the remote archive, bring it to a clean state and the mirror up to date; yield the mirror."""
    from .config import ArchiveConfig

    cfg = archive_config or ArchiveConfig()
    mirror = Mirror(url, cfg.cache_dir, log)
    mirror.root.mkdir(parents=True, exist_ok=True)
    timeout = cfg.remote_lock_timeout_seconds if lock_timeout is None else lock_timeout
    with RemoteLock(mirror.loc, ttl=cfg.remote_lock_ttl_seconds, timeout=timeout, log=log) as lock:
        mirror.lock = lock
        recovered = mirror.recover()
        if any(recovered.values()):
            log(f"{url}: {recovered}")
        # The bucket is the truth: a local run that never got published (killed, failed) is dropped here
        # and its documents are cleaned again by this run.
        shutil.rmtree(mirror.root / "_txn", ignore_errors=True)
        synced = mirror.sync_down()
        log(f"{url}: mirror {mirror.root} up to date ({synced['downloaded']} files fetched, {synced['kept']} kept)")
        yield mirror


def run(url: str, work: Callable[[Path], T], archive_config=None, log: Log = lambda m: None) -> T:
    """``work(mirror_root)`` (a pipeline run on the local mirror), then publish what it changed."""
    with session(url, archive_config, log) as mirror:
        result = work(mirror.root)
        plan = mirror.publish()
        if plan:
            log(f"published run {plan['run_id']} to {url}: {len(plan['uploads'])} files up, {len(plan['deletes'])} removed")
    return result


def verify(url: str, repair: bool = False, archive_config=None, log: Log = lambda m: None):
    """`docclean verify` for a bucket: interrupted publishes (finished or undone with ``repair``), then
    every check of a local archive, on the mirror synced from the bucket."""
    from .verify import VerifyResult, verify as verify_local

    loc = locate(url)
    result = VerifyResult()
    if loc.fs.get_file_info(loc.base).type == pafs.FileType.NotFound:
        result.problem(f"no archive at {url}")
        return result
    opened = session(url, archive_config, log, lock_timeout=60) if repair else _read_only(url, archive_config)
    try:
        with opened as mirror:
            for run_id in sorted(_plans(loc)):
                result.problem(f"interrupted publish of run {run_id} (run `docclean verify --repair {url}`)")
            local = verify_local(mirror.root)
    except ArchiveError as exc:  # a run holds the lock: the archive can't be checked now
        result.problem(str(exc))
        return result
    result.sound = result.sound and local.sound
    result.counts = local.counts
    result.messages = local.messages[:1] + result.messages + local.messages[1:]
    return result


@contextlib.contextmanager
def _read_only(url: str, archive_config) -> Iterator[Mirror]:
    """The mirror, synced under the lock (a sync must not meet a publish), without recovering anything."""
    from .config import ArchiveConfig

    cfg = archive_config or ArchiveConfig()
    mirror = Mirror(url, cfg.cache_dir)
    mirror.root.mkdir(parents=True, exist_ok=True)
    with RemoteLock(mirror.loc, ttl=cfg.remote_lock_ttl_seconds, timeout=60):
        if not mirror._load("pending.json"):
            shutil.rmtree(mirror.root / "_txn", ignore_errors=True)
            mirror.sync_down()
        yield mirror
