#!/usr/bin/env python3
"""The driver of `scripts/bench`: sets up the same bytes behind yetifs (through `yetifs serve`)
and behind rclone (through `rclone serve webdav`), runs every measurement on loopback and again
with added latency, and writes the markdown report. Ratios between readers measured in the same
run are the verdict; absolute figures on a shared machine are not stable.

Run it through `scripts/bench`, which installs the tools and builds the binaries first.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
YETIFS = REPO / "target" / "release" / "yetifs"
MEMFS = REPO / "target" / "release" / "examples" / "memfs"
MIB = 1024 * 1024
BIG_NAME = "big.bin"


class BenchError(Exception):
    """A step of the benchmark could not be carried out."""


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: stop measuring and clean up."""


@dataclass
class Settings:
    """Sizes and knobs, from the command line and `BENCH_*` variables."""

    quick: bool
    size_mib: int
    files: int
    folders: int
    small_files: int
    mixed_small_files: int
    fio_secs: int
    fio_jobs: int
    repeat: int
    latency: str
    # The second latency profile, metadata only ("" leaves it out).
    far_latency: str
    memory_cache_mib: int
    timeout: float
    out: Path
    skip_latency: bool
    only: frozenset[str]

    @staticmethod
    def load(argv: list[str]) -> "Settings":
        parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
        parser.add_argument("--quick", action="store_true", help="small sizes, a quick check")
        args = parser.parse_args(argv)
        quick = args.quick

        def env_int(name: str, full: int, small: int) -> int:
            raw = os.environ.get(name)
            if raw is None:
                return small if quick else full
            try:
                return int(raw)
            except ValueError as e:
                raise BenchError(f"{name}={raw!r} is not a whole number") from e

        return Settings(
            quick=quick,
            size_mib=env_int("BENCH_SIZE_MIB", 1024, 128),
            files=env_int("BENCH_FILES", 10_000, 1_000),
            folders=env_int("BENCH_FOLDERS", 500, 50),
            small_files=env_int("BENCH_SMALL_FILES", 2_000, 200),
            mixed_small_files=env_int("BENCH_MIXED_SMALL_FILES", 400, 100),
            fio_secs=env_int("BENCH_FIO_SECS", 8, 3),
            fio_jobs=env_int("BENCH_FIO_JOBS", 4, 4),
            repeat=max(1, env_int("BENCH_REPEAT", 2, 1)),
            latency=os.environ.get("BENCH_LATENCY", "20ms"),
            far_latency=os.environ.get("BENCH_FAR_LATENCY", "80ms").strip(),
            memory_cache_mib=env_int("BENCH_MEMORY_CACHE_MIB", 128, 128),
            timeout=float(env_int("BENCH_TIMEOUT_SECS", 600, 300)),
            out=Path(os.environ.get("BENCH_OUT", REPO / "docs" / "benchmarks.md")),
            skip_latency=os.environ.get("BENCH_SKIP_LATENCY", "0") == "1",
            only=parse_parts(os.environ.get("BENCH_ONLY", "")),
        )


# The parts of a run, in order; `BENCH_ONLY` picks some of them.
PARTS = ("seq", "rand", "meta", "writes")


def parse_parts(raw: str) -> frozenset[str]:
    """The parts `BENCH_ONLY` names (comma-separated), all of them when it is empty."""
    names = {p.strip() for p in raw.split(",") if p.strip()}
    unknown = names - set(PARTS)
    if unknown:
        raise BenchError(f"BENCH_ONLY: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    return frozenset(names or PARTS)


STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, with the minutes and seconds since the start."""
    mins, secs = divmod(int(time.monotonic() - STARTED), 60)
    print(f"bench {mins:02d}:{secs:02d} {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes and mounts, always cleaned up


def fuse_mounted(path: Path) -> bool:
    """Whether a FUSE filesystem is mounted exactly at `path`."""
    target = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mountpoint = fields[4].replace("\\040", " ")
            if mountpoint == target and fields[sep + 1].startswith("fuse"):
                return True
    return False


class Supervisor:
    """Everything the run started: processes (by pid) and mountpoints. `cleanup` unmounts and
    ends them all, and runs on every exit path, interrupted or not."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.mounts: list[Path] = []

    def spawn(self, name: str, args: list[str], stdout=None) -> subprocess.Popen:
        """Starts a process in its own session, so a terminal's Ctrl-C reaches only us and the
        unmount order stays ours. Its stderr goes to logs/NAME.log."""
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        err = open(logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [str(a) for a in args],
            stdout=stdout if stdout is not None else err,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        err.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        """Ends one process it started: SIGTERM, then SIGKILL after 10 s."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def mount(self, name: str, args: list[str], mountpoint: Path) -> subprocess.Popen:
        """Starts a foreground FUSE daemon and waits until its mount is live."""
        mountpoint.mkdir(parents=True, exist_ok=True)
        proc = self.spawn(name, args)
        self.mounts.append(mountpoint)
        deadline = time.monotonic() + 60
        while not fuse_mounted(mountpoint):
            if proc.poll() is not None:
                self.mounts.remove(mountpoint)
                self.procs.remove(proc)
                tail = (self.workdir / "logs" / f"{name}.log").read_text(errors="replace")
                raise BenchError(f"{name} exited with {proc.returncode}: {tail[-600:].strip()}")
            if time.monotonic() > deadline:
                self.unmount(mountpoint, proc)
                raise BenchError(f"{name} did not mount {mountpoint} within 60 s")
            time.sleep(0.05)
        return proc

    def unmount(self, mountpoint: Path, proc: subprocess.Popen) -> None:
        """Unmounts (detaching if busy) and ends the daemon behind the mount."""
        for attempt in range(20):
            if not fuse_mounted(mountpoint):
                break
            flags = ["-l"] if attempt == 19 else []
            subprocess.run(["umount", *flags, str(mountpoint)], capture_output=True, check=False)
            time.sleep(0.1 if fuse_mounted(mountpoint) else 0)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"daemon {proc.pid} still running after unmount; stopping it")
        self.stop(proc)
        if mountpoint in self.mounts:
            self.mounts.remove(mountpoint)

    def cleanup(self) -> None:
        for mountpoint in list(self.mounts):
            for flags in ([], ["-l"]):
                if fuse_mounted(mountpoint):
                    subprocess.run(["umount", *flags, str(mountpoint)], capture_output=True)
        self.mounts.clear()
        for proc in list(self.procs):
            self.stop(proc)


# What the servers (the emulator, `rclone serve webdav`) serve from: read back into the page cache
# after every drop of it, see `drop_caches`.
SERVER_DIRS: list[Path] = []


def drop_caches(servers_warm: bool = True) -> None:
    """Empties the kernel's page, dentry and inode caches (cold runs), then, unless
    `servers_warm` is false, reads the servers' files back in. Cold means the reader's caches
    are cold, not the server's disk: a real server is another machine with caches of its own,
    and on this one its disk reads would be charged to the mount (and capped by the disk) while
    the FUSE ceiling, which serves from memory, pays none. Local disk runs pass False."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    if servers_warm:
        for top in SERVER_DIRS:
            for root, _dirs, files in os.walk(top):
                for name in files:
                    try:
                        with open(os.path.join(root, name), "rb", buffering=0) as f:
                            while f.read(4 * MIB):
                                pass
                    except OSError:
                        pass


def reset_peak_rss(proc: subprocess.Popen | None) -> None:
    """Restarts a process's peak RSS (VmHWM) count from its current RSS."""
    if proc is not None and proc.poll() is None:
        try:
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5\n")
        except OSError as e:
            log(f"cannot reset peak RSS of {proc.pid}: {e}")


def peak_rss_mib(proc: subprocess.Popen | None) -> float | None:
    """VmHWM of a live process, in MiB."""
    if proc is None or proc.poll() is not None:
        return None
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} is not listening on port {port}")


@dataclass
class Timed:
    """One timed command: seconds taken, or why it did not complete."""

    secs: float | None
    error: str | None = None


def timed(cmd: list, timeout: float) -> Timed:
    """Runs a command and times it; a failure keeps the first line of its stderr."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            [str(c) for c in cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Timed(None, f"timed out after {timeout:.0f} s")
    secs = time.monotonic() - start
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return Timed(None, lines[0] if lines else f"exit status {done.returncode}")
    return Timed(secs)


# ---------------------------------------------------------------------------------------------
# The API, for populating the emulator and for the raw curl baseline


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "bench" + "".join(random.choices("0123456789abcdef", k=24))
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="upload_file"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
    )
    parts.append(content)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def live(entry: dict) -> bool:
    """Whether a listed file or folder is not in the trash (4.x lists trashed folders without
    a status, and their files not at all)."""
    return entry.get("status", "active") == "active"


class Api:
    """Just enough of the API v2 to put content on the emulator and fetch its download URL."""

    def __init__(self, base: str, key1: str, key2: str):
        self.base = base if base.endswith("/") else base + "/"
        reply = self.post("authorize", {"key1": key1, "key2": key2})
        self.token = reply["data"]["access_token"]
        self.account = str(reply["data"]["account_id"])

    def post(self, endpoint: str, fields: dict[str, str], body=None, content_type=None) -> dict:
        if body is None:
            body = urllib.parse.urlencode(fields).encode()
            content_type = "application/x-www-form-urlencoded"
        req = urllib.request.Request(
            self.base + endpoint, data=body, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            reply = json.loads(resp.read())
        if reply.get("_status", reply.get("status")) != "success":
            raise BenchError(f"{endpoint}: {reply.get('response')}")
        return reply

    def auth(self) -> dict[str, str]:
        return {"access_token": self.token, "account_id": self.account}

    def create_folder(self, name: str, parent: str | None) -> str:
        fields = {**self.auth(), "folder_name": name}
        if parent is not None:
            fields["parent_id"] = parent
        return str(self.post("folder/create", fields)["data"]["id"])

    def upload_bytes(self, name: str, content: bytes, folder: str | None) -> str:
        fields = {**self.auth(), "folder_id": folder or ""}
        body, ctype = multipart(fields, name, content)
        return str(self.post("file/upload", {}, body, ctype)["data"][0]["file_id"])

    def curl_upload_cmd(self, path: Path, folder: str | None) -> list[str]:
        return [
            "curl", "-sS", "--fail", "-o", "/dev/null", "-F", f"access_token={self.token}",
            "-F", f"account_id={self.account}", "-F", f"folder_id={folder or ''}",
            "-F", f"upload_file=@{path}", self.base + "file/upload",
        ]  # fmt: skip

    def root_file_id(self, name: str) -> str:
        listing = self.post("folder/listing", {**self.auth(), "parent_folder_id": "0"})
        for f in listing["data"].get("files") or []:
            if f.get("filename") == name:
                return str(f["id"])
        raise BenchError(f"{name} is not in the root folder")

    def download_url(self, file_id: str) -> str:
        reply = self.post("file/download", {**self.auth(), "file_id": file_id})
        return reply["data"]["download_url"]

    def delete_folder(self, folder_id: str) -> None:
        self.post("folder/delete", {**self.auth(), "folder_id": folder_id})

    def root_folders(self, name: str) -> list[str]:
        """The ids of the root folders called `name` that are not in the trash."""
        root = self.post("folder/listing", {**self.auth(), "parent_folder_id": "0"})["data"]
        return [str(f["id"]) for f in root.get("folders") or [] if f.get("folderName") == name and live(f)]

    def tree_on_server(self, name: str) -> tuple[int, int]:
        """Active files and their bytes under the root folders called `name`, trashed ones
        skipped: what a write left on the server, checked after it claims to be done."""
        files = size = 0
        pending = self.root_folders(name)
        while pending:
            listing = self.post("folder/listing", {**self.auth(), "parent_folder_id": pending.pop()})["data"]
            for f in listing.get("files") or []:
                if live(f):
                    files += 1
                    size += int(f["fileSize"])
            pending += [str(d["id"]) for d in listing.get("folders") or [] if live(d)]
        return files, size


def upload_tree(api: Api, src: Path, name: str, workers: int, timeout: float) -> str:
    """Creates folder `name` at the root with `src`'s folders under it, then uploads every file
    by its own `curl` POST, `workers` at a time (1: one after another, as a shell loop would).
    Answers the new folder's id."""
    top = api.create_folder(name, None)
    ids = {src: top}
    # Sorted, a folder comes before everything inside it.
    for folder in sorted(p for p in src.rglob("*") if p.is_dir()):
        ids[folder] = api.create_folder(folder.name, ids[folder.parent])
    files = sorted(p for p in src.rglob("*") if p.is_file())

    def one(path: Path) -> None:
        cmd = api.curl_upload_cmd(path, ids[path.parent])
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"curl upload of {path.name} timed out after {timeout:.0f} s") from e
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise BenchError(f"curl upload of {path.name}: {lines[0] if lines else done.returncode}")

    if workers == 1:
        for path in files:
            one(path)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, files))
    return top


# ---------------------------------------------------------------------------------------------
# The content: one large file, a tree of small files, a tarball of small files, a tree of mixed
# sizes


@dataclass
class Content:
    """Where the generated content lies on local disk, and what the trees to be written hold
    (files, bytes), to check that a write left all of it on the server."""

    big: Path
    tree: Path
    tarball: Path
    small: tuple[int, int]
    mixed: Path
    mixed_size: tuple[int, int]
    # Why the yetifs-written tree (`written/`) is not on the emulator; empty when it is.
    written_error: str = ""


def write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        while size > 0:
            f.write(rng.randbytes(min(size, MIB)))
            size -= MIB


def make_mixed(root: Path, total_mib: int, small_files: int) -> tuple[int, int]:
    """A tree like a project or photo folder copied in one go: half of `total_mib` in three
    large files, files of 1-10 MiB up to 95 % of it, then `small_files` files of 1-64 KiB.
    Answers (files, bytes)."""
    rng = random.Random(20261124)
    files = size = 0
    for i, share in enumerate((0.20, 0.17, 0.13)):
        n = max(1, int(total_mib * share)) * MIB
        write_random(root / "large" / f"video{i}.bin", n, rng)
        files, size = files + 1, size + n
    i = 0
    while size < total_mib * MIB * 95 // 100:
        n = rng.randint(MIB, 10 * MIB)
        write_random(root / "medium" / f"m{i % 4:02d}" / f"photo{i:03d}.bin", n, rng)
        files, size, i = files + 1, size + n, i + 1
    for i in range(small_files):
        n = rng.randint(1024, 64 * 1024)
        write_random(root / "small" / f"s{i % 8:02d}" / f"note{i:04d}.txt", n, rng)
        files, size = files + 1, size + n
    return files, size


def make_content(root: Path, s: Settings, full: bool = True) -> Content:
    """The large file and, when `full`, the trees the other parts need (a run of the
    sequential reads alone gets empty ones)."""
    rng = random.Random(20261123)
    root.mkdir(parents=True)
    big = root / BIG_NAME
    with open(big, "wb") as f:
        for _ in range(s.size_mib):
            f.write(rng.randbytes(MIB))
    tree = root / "tree"
    if not full:
        tree.mkdir()
        return Content(big, tree, root / "small.tar", (0, 0), root / "mixed", (0, 0))
    for i in range(s.files):
        folder = tree / f"d{i % s.folders:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.txt").write_bytes(rng.randbytes(rng.randint(256, 4096)))
    tarball = root / "small.tar"
    staging = root / "small"
    small_bytes = 0
    for i in range(s.small_files):
        folder = staging / f"s{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(512, 8192))
        (folder / f"n{i:05d}.dat").write_bytes(data)
        small_bytes += len(data)
    with tarfile.open(tarball, "w") as tar:
        tar.add(staging, arcname="small")
    shutil.rmtree(staging)
    mixed = root / "mixed"
    mixed_size = make_mixed(mixed, s.size_mib, s.mixed_small_files)
    return Content(big, tree, tarball, (s.small_files, small_bytes), mixed, mixed_size)


def populate(api: Api, content: Content, workers: int = 8) -> None:
    """Puts the tree on the emulator: `tree/dNNNN/fNNNNN.txt`, through the API."""
    tree_id = api.create_folder("tree", None)
    folders = sorted(p for p in content.tree.iterdir() if p.is_dir())
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        ids = dict(zip(folders, pool.map(lambda p: api.create_folder(p.name, tree_id), folders)))
        uploads = [
            pool.submit(api.upload_bytes, f.name, f.read_bytes(), ids[folder])
            for folder in folders
            for f in sorted(folder.iterdir())
        ]
        for done in uploads:
            done.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# Servers and mounts under test


@dataclass
class Emulator:
    proc: subprocess.Popen
    api_url: str
    key1: str
    key2: str
    access_log: Path

    def api_calls(self) -> int:
        """Requests to the API so far (downloads from the file server not counted)."""
        if not self.access_log.exists():
            return 0
        with open(self.access_log, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if " /api/v2/" in line)


def start_emulator(sup: Supervisor, data: Path, faults: str | None, name: str) -> Emulator:
    access_log = sup.workdir / "logs" / f"{name}-access.log"
    args = [
        YETIFS, "serve", "--listen", "127.0.0.1:0", "--data", data, "--ranges", "correct",
        "--quirks-off", "single-token", "--access-log", access_log,
    ]  # fmt: skip
    if faults:
        args += ["--faults", faults]
    proc = sup.spawn(name, args, stdout=subprocess.PIPE)
    values: dict[str, str] = {}
    assert proc.stdout is not None
    while "data" not in values:
        line = proc.stdout.readline().decode()
        if not line:
            raise BenchError(f"yetifs serve exited with {proc.wait()}")
        key, _, value = line.strip().partition("=")
        values[key] = value
    return Emulator(proc, values["api_url"], values["key1"], values["key2"], access_log)


def yetifs_available() -> str | None:
    """None when `yetifs mount` exists, else why it cannot be measured."""
    done = subprocess.run([YETIFS, "mount", "--help"], capture_output=True, check=False)
    if done.returncode != 0:
        return "this yetifs has no `mount` command yet"
    return None


def mount_offers(flag: str) -> str | None:
    """None when `yetifs mount` offers `flag`, else why the rows that need it are not
    measured."""
    done = subprocess.run([YETIFS, "mount", "--help"], capture_output=True, check=False)
    if flag not in done.stdout.decode(errors="replace"):
        return f"this yetifs mount has no {flag} yet"
    return None


def sync_available() -> str | None:
    """None when `yetifs sync` exists, else why a write cannot be timed until it is on the
    server through it."""
    done = subprocess.run([YETIFS, "sync", "--help"], capture_output=True, check=False)
    if done.returncode != 0:
        return "this yetifs has no `sync` command yet"
    return None


class Systems:
    """Starts the readers under test, each on a fresh mountpoint with fresh caches, and runs a
    measurement on them."""

    KINDS = ("yetifs", "yetifs-wb", "yetifs-prefetch", "rclone-off", "rclone-full", "memfs")

    def __init__(
        self,
        sup: Supervisor,
        s: Settings,
        emu: Emulator,
        webdav_url: str,
        tag: str,
        webdav_requests: Path | None,
    ):
        self.sup, self.s, self.emu, self.webdav_url, self.tag = sup, s, emu, webdav_url, tag
        self.webdav_requests = webdav_requests
        self.no_yetifs = yetifs_available()
        self.no_write_back = self.no_yetifs or mount_offers("--write-back")
        self.no_sync = self.no_yetifs or sync_available()
        self.no_prefetch = self.no_yetifs or mount_offers("--prefetch-tree")
        self.count = 0

    def requests(self, kind: str) -> int | None:
        """Requests the reader's server has answered so far, where they are counted: the
        emulator's access log for yetifs (and for curl talking to the API), the delay proxy for
        rclone."""
        if kind in ("yetifs", "yetifs-wb", "yetifs-prefetch", "curl"):
            return self.emu.api_calls()
        if kind.startswith("rclone-") and self.webdav_requests is not None:
            try:
                return int(self.webdav_requests.read_text() or 0)
            except (OSError, ValueError):
                return 0
        return None

    def start(self, kind: str) -> tuple[Path, subprocess.Popen]:
        self.count += 1
        base = self.sup.workdir / "run" / f"{self.tag}-{kind}-{self.count}"
        base.mkdir(parents=True)
        mnt = base / "mnt"
        name = f"{self.tag}-{kind}-{self.count}"
        if kind.startswith("yetifs"):
            if self.no_yetifs:
                raise BenchError(self.no_yetifs)
            if kind == "yetifs-wb" and self.no_write_back:
                raise BenchError(self.no_write_back)
            if kind == "yetifs-prefetch" and self.no_prefetch:
                raise BenchError(self.no_prefetch)
            # The default delay: `yetifs sync` starts every pending upload at once. Followed by
            # another option, so that the flag's optional value cannot swallow the mountpoint.
            extra = {"yetifs-wb": ["--write-back"], "yetifs-prefetch": ["--prefetch-tree"]}.get(kind, [])
            args = [
                YETIFS, "mount", "--api-url", self.emu.api_url, "--key1", self.emu.key1,
                "--key2", self.emu.key2, "--cache-dir", base / "cache", "--cache-size",
                f"{2 * self.s.size_mib + 256}MiB", "--memory-cache",
                f"{self.s.memory_cache_mib}MiB", *extra, "--dir-ttl", "3600", mnt,
            ]  # fmt: skip
        elif kind.startswith("rclone-"):
            args = [
                "rclone", "mount", ":webdav:", mnt, "--webdav-url", self.webdav_url,
                "--vfs-cache-mode", kind.removeprefix("rclone-"), "--cache-dir", base / "cache",
                "--dir-cache-time", "1h", "--attr-timeout", "1h", "--config", "/dev/null",
            ]  # fmt: skip
        elif kind == "memfs":
            args = [MEMFS, mnt, f"{self.s.size_mib}MiB", BIG_NAME]
        else:
            raise BenchError(f"unknown reader {kind}")
        return mnt, self.sup.mount(name, args, mnt)

    def run(self, kind: str, work) -> tuple[object, float | None, str]:
        """Mounts `kind` fresh, drops the page cache, runs `work(mountpoint, daemon)` and answers its
        result, the daemon's peak RSS (MiB) during it, and why it failed (empty if it did not)."""
        try:
            mnt, proc = self.start(kind)
        except BenchError as e:
            return None, None, str(e)
        try:
            drop_caches()
            reset_peak_rss(proc)
            result = work(mnt, proc)
            return result, peak_rss_mib(proc), ""
        finally:
            self.sup.unmount(mnt, proc)
            # The mount's directory holds its caches (up to twice the big file): gone at once,
            # so a full run needs room for one mount at a time, not all of them.
            shutil.rmtree(mnt.parent, ignore_errors=True)


async def _pipe(reader, writer, state: dict, delay: float, to_server: bool) -> None:
    try:
        while chunk := await reader.read(256 * 1024):
            if to_server:
                if state["idle"]:
                    state["idle"] = False
                    state["requests"][0] += 1
                    state["count_file"].write_text(str(state["requests"][0]))
                    await asyncio.sleep(delay)
            else:
                state["idle"] = True
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def delay_proxy(listen: int, target: int, delay: float, count_file: Path) -> None:
    """A TCP proxy that holds back each request (the first bytes a client sends after the last
    answer) by `delay`: the same added latency per request as the emulator's
    `--faults latency=`, for the rclone side. Keeps the number of requests in `count_file`."""

    async def serve() -> None:
        requests = [0]

        async def handle(client_r, client_w) -> None:
            try:
                server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                client_w.close()
                return
            state = {"idle": True, "requests": requests, "count_file": count_file}
            await asyncio.gather(
                _pipe(client_r, server_w, state, delay, True),
                _pipe(server_r, client_w, state, delay, False),
            )

        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", text.strip())
    if not match:
        raise BenchError(f"latency {text!r} is not like 20ms or 1.5s")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Seq:
    """A sequential read of the large file: MiB/s cold and warm, peak RSS of the daemon, and
    the CPU-seconds per GiB the reader spent on the cold read (curl's own process; a mount's
    daemon, not `dd`)."""

    reader: str
    cold: float | None = None
    warm: float | None = None
    rss: float | None = None
    note: str = ""
    cold_cpu: float | None = None


@dataclass
class Rand:
    reader: str
    block: str
    cold_iops: float | None = None
    cold_p99_ms: float | None = None
    warm_iops: float | None = None
    warm_p99_ms: float | None = None
    rss: float | None = None
    note: str = ""


@dataclass
class Meta:
    """One metadata command over one tree (a folder at the root, see `TREES`), cold on a fresh
    mount and warm right after; requests as counted by `Systems.requests`."""

    reader: str
    command: str
    cold_secs: float | None = None
    cold_calls: int | None = None
    warm_secs: float | None = None
    warm_calls: int | None = None
    rss: float | None = None
    note: str = ""
    tree: str = "tree"


@dataclass
class Write:
    """One write, timed until its bytes are on the server (or on disk, for local disk)."""

    writer: str
    what: str
    secs: float | None = None
    mib_per_sec: float | None = None
    rss: float | None = None
    note: str = ""
    requests: int | None = None


@dataclass
class Profile:
    """Everything measured under one network condition; `full` false: the metadata only."""

    name: str
    latency: str | None
    full: bool = True
    seq: list[Seq] = field(default_factory=list)
    rand: list[Rand] = field(default_factory=list)
    meta: list[Meta] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)


def mib_per_sec(size_mib: int, t: Timed) -> float | None:
    return size_mib / t.secs if t.secs else None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(proc: subprocess.Popen | None) -> float | None:
    """CPU-seconds (user and system, all threads) a live process has used so far, from
    /proc/PID/stat (utime and stime, fields 14 and 15, in clock ticks). Unlike wall time,
    CPU-seconds hardly move on a shared machine."""
    if proc is None or proc.poll() is not None:
        return None
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are plain numbers.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu() -> float:
    """CPU-seconds of every child process waited for so far. The daemons and servers the run
    started are waited for only when stopped, so the difference around one `timed` command is
    that command's own CPU."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_per_gib(size_mib: int, t: Timed, cpu: float | None) -> float | None:
    """CPU-seconds per GiB of a read of `size_mib` that completed."""
    return cpu * 1024 / size_mib if t.secs and cpu is not None and size_mib else None


def dd_read(path: Path, s: Settings) -> Timed:
    """Reads the large file through with `dd bs=1M`; a short read counts as a failure."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            ["dd", f"if={path}", "of=/dev/null", "bs=1M"],
            capture_output=True,
            timeout=s.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Timed(None, f"timed out after {s.timeout:.0f} s")
    secs = time.monotonic() - start
    report = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        return Timed(None, report.strip().splitlines()[0] if report.strip() else "dd failed")
    match = re.search(r"^(\d+) bytes", report, re.M)
    copied = int(match.group(1)) if match else -1
    if copied != s.size_mib * MIB:
        return Timed(None, f"read {copied} bytes of {s.size_mib * MIB}")
    return Timed(secs)


def ranged_single_stream(url: str, size: int, block: int, timeout: float) -> Timed:
    """Reads `url` as a FUSE filesystem without read-ahead would: one ranged GET per block,
    one after another, on one keep-alive connection."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    start = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        for offset in range(0, size, block):
            end = min(offset + block, size) - 1
            conn.request("GET", path, headers={"Range": f"bytes={offset}-{end}"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 206 or len(body) != end - offset + 1:
                return Timed(None, f"range {offset}-{end}: HTTP {resp.status}, {len(body)} bytes")
            if time.monotonic() - start > timeout:
                return Timed(None, f"timed out after {timeout:.0f} s")
    except (OSError, http.client.HTTPException) as e:
        return Timed(None, str(e))
    finally:
        conn.close()
    return Timed(time.monotonic() - start)


LABELS = {
    "yetifs": "yetifs",
    "yetifs-wb": "yetifs --write-back",
    "yetifs-prefetch": "yetifs, prefetched tree",
    "rclone-off": "rclone mount, cache off",
    "rclone-full": "rclone mount, cache full",
    "memfs": "FUSE ceiling (memfs)",
}
CURL = "raw curl (one stream)"
CURL_UPLOAD = "raw curl upload (multipart POST)"
CURL_EACH = "curl, one file after another"
# Where yetifs writes, "yetifs" alone would not say how: close waits for the upload.
YETIFS_CLOSE = "yetifs, close uploads"
SINGLE = "single stream, no read-ahead (1 MiB GETs in turn)"
LOCAL = "local disk"


def joined(*notes: str | None) -> str:
    """Notes for one table cell: on one line, without the table's `|`."""
    text = "; ".join(n for n in notes if n)
    return " ".join(text.split()).replace("|", "\\|")


def best_of(tries: list[Seq]) -> Seq:
    """Merges repeated runs of one reader: the best throughput and the lowest CPU per GiB
    (noise on a shared machine only ever slows a run down or adds to its cost), the highest peak
    RSS, every distinct note."""

    def top(values):
        present = [v for v in values if v is not None]
        return max(present) if present else None

    notes = list(dict.fromkeys(t.note for t in tries if t.note))
    cpu = [t.cold_cpu for t in tries if t.cold_cpu is not None]
    return Seq(
        tries[0].reader,
        top(t.cold for t in tries),
        top(t.warm for t in tries),
        top(t.rss for t in tries),
        joined(*notes),
        min(cpu) if cpu else None,
    )


def measure_seq(sys_: Systems, s: Settings, content: Content, url: str) -> list[Seq]:
    curl = ["curl", "-sS", "--fail", "-o", "/dev/null", url]

    def by_curl() -> Seq:
        drop_caches()
        before = children_cpu()
        cold = timed(curl, s.timeout)
        cpu = children_cpu() - before
        warm = timed(curl, s.timeout)
        return Seq(CURL, mib_per_sec(s.size_mib, cold), mib_per_sec(s.size_mib, warm),
                   note=joined(cold.error, warm.error), cold_cpu=cpu_per_gib(s.size_mib, cold, cpu))  # fmt: skip

    def by_single_stream() -> Seq:
        drop_caches()
        single = ranged_single_stream(url, s.size_mib * MIB, MIB, s.timeout)
        return Seq(SINGLE, mib_per_sec(s.size_mib, single), note=single.error or "")

    def from_local_disk() -> Seq:
        drop_caches(servers_warm=False)
        cold, warm = dd_read(content.big, s), dd_read(content.big, s)
        return Seq(LOCAL, mib_per_sec(s.size_mib, cold), mib_per_sec(s.size_mib, warm),
                   note=joined(cold.error, warm.error))  # fmt: skip

    def work(mnt: Path, proc) -> tuple[Timed, float | None, Timed]:
        before = process_cpu(proc)
        cold = dd_read(mnt / BIG_NAME, s)
        after = process_cpu(proc)
        cpu = after - before if before is not None and after is not None else None
        return cold, cpu, dd_read(mnt / BIG_NAME, s)

    def on_mount(kind: str) -> Seq:
        result, rss, error = sys_.run(kind, work)
        row = Seq(LABELS[kind], rss=rss, note=error)
        if result is not None:
            cold, cpu, warm = result
            row.cold, row.warm = mib_per_sec(s.size_mib, cold), mib_per_sec(s.size_mib, warm)
            row.cold_cpu = cpu_per_gib(s.size_mib, cold, cpu)
            row.note = joined(cold.error, warm.error)
        return row

    readers = [(CURL, by_curl), (SINGLE, by_single_stream), (LOCAL, from_local_disk)]
    kinds = (["memfs"] if sys_.tag == "loopback" else []) + ["yetifs", "rclone-off", "rclone-full"]
    readers += [(LABELS[k], lambda k=k: on_mount(k)) for k in kinds]
    rows = []
    for label, measure in readers:
        log(f"sequential read: {label} (best of {s.repeat})")
        rows.append(best_of([measure() for _ in range(s.repeat)]))
    return rows


FioResult = tuple[float | None, float | None, str]


def fio(path: Path, block: str, warm: bool, s: Settings) -> FioResult:
    """Random reads of `block` by several jobs; answers IOPS, p99 completion latency in ms and
    an error if any. Warm runs keep the page cache and repeat the cold run's offsets."""
    args = [
        "fio", "--name=rand", f"--filename={path}", "--readonly", "--rw=randread",
        f"--bs={block}", f"--numjobs={s.fio_jobs}", "--ioengine=psync", "--time_based",
        f"--runtime={s.fio_secs}", f"--size={s.size_mib}M", "--group_reporting",
        f"--invalidate={0 if warm else 1}", "--output-format=json",
    ]  # fmt: skip
    try:
        done = subprocess.run(args, capture_output=True, timeout=s.fio_secs + 120, check=False)
    except subprocess.TimeoutExpired:
        return None, None, "fio timed out"
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0 or "{" not in out:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return None, None, lines[-1] if lines else f"fio exit status {done.returncode}"
    job = json.loads(out[out.index("{") :])["jobs"][0]
    read = job["read"]
    p99 = read.get("clat_ns", {}).get("percentile", {}).get("99.000000")
    error = f"fio error {job['error']}" if job.get("error") else ""
    return read["iops"], (p99 / 1e6 if p99 else None), error


def measure_rand(sys_: Systems, s: Settings, content: Content) -> list[Rand]:
    rows = []
    for block in ("4k", "1m"):
        # Added latency changes nothing on local disk: measured on loopback only.
        if sys_.tag == "loopback":
            log(f"random reads {block}: local disk")
            drop_caches(servers_warm=False)
            row = Rand(LOCAL, block)
            row.cold_iops, row.cold_p99_ms, e1 = fio(content.big, block, False, s)
            row.warm_iops, row.warm_p99_ms, e2 = fio(content.big, block, True, s)
            row.note = joined(e1, e2)
            rows.append(row)

        def work(mnt: Path, _proc, block=block) -> tuple[FioResult, FioResult]:
            return fio(mnt / BIG_NAME, block, False, s), fio(mnt / BIG_NAME, block, True, s)

        for kind in ("yetifs", "rclone-off", "rclone-full"):
            log(f"random reads {block}: {LABELS[kind]}")
            result, rss, error = sys_.run(kind, work)
            row = Rand(LABELS[kind], block, rss=rss, note=error)
            if result is not None:
                (row.cold_iops, row.cold_p99_ms, e1), (row.warm_iops, row.warm_p99_ms, e2) = result
                row.note = joined(e1, e2)
            rows.append(row)
    return rows


# The trees the metadata rows walk, folders of the same shape at the root: `tree/`, uploaded
# through the API by the bench (foreign files, without yetifs's metadata: their dates cost a
# `file/info` each), and `written/`, copied in through a yetifs mount (its files carry their
# dates in the listing, in `fileType`). rclone's WebDAV root holds the same two.
WRITTEN = "written"
TREES = {"tree": "a foreign tree", WRITTEN: "a yetifs-written tree"}
# Metadata commands. `du -s` only cold (its warm run would repeat `ls -lR`'s), and not in the
# metadata-only profile, where at 80 ms it would add minutes to a full run for a figure like
# `ls -lR`'s.
META_COMMANDS = {"ls -lR": ["ls", "-lR"], "find": ["find"], "du -s": ["du", "-s"]}
COLD_ONLY = ("du -s",)


def counted(sys_: Systems, kind: str, cmd: list, s: Settings) -> tuple[Timed, int | None]:
    """Times a command and counts the requests the reader's server answered meanwhile."""
    before = sys_.requests(kind)
    done = timed(cmd, s.timeout)
    after = sys_.requests(kind)
    return done, (after - before if before is not None and after is not None else None)


def meta_on_mount(sys_: Systems, s: Settings, kind: str, tree: str, label: str) -> Meta:
    """One metadata command over `tree` on a fresh mount: cold, then (unless cold only) warm."""
    cmd = META_COMMANDS[label]

    def work(mnt: Path, _proc) -> tuple:
        cold = counted(sys_, kind, [*cmd, mnt / tree], s)
        warm = counted(sys_, kind, [*cmd, mnt / tree], s) if label not in COLD_ONLY else (Timed(None), None)
        return cold, warm

    log(f"metadata {label} of {tree}/: {LABELS[kind]}")
    result, rss, error = sys_.run(kind, work)
    row = Meta(LABELS[kind], label, rss=rss, note=error, tree=tree)
    if result is not None:
        (cold, row.cold_calls), (warm, row.warm_calls) = result
        row.cold_secs, row.warm_secs = cold.secs, warm.secs
        row.note = joined(cold.error, warm.error)
    return row


def prefetch_state(report: dict) -> str | None:
    """The prefetch's state in a `yetifs status --json` report, lowercased: a `prefetch` object
    with a `state`, `phase` or `status` (a string, or an enum as serde writes it), or a plain
    string; None when the report has none. The format is not final, hence the latitude."""
    prefetch = report.get("prefetch")
    if isinstance(prefetch, str):
        return prefetch.lower()
    if not isinstance(prefetch, dict):
        return None
    for key in ("state", "phase", "status"):
        value = prefetch.get(key)
        if isinstance(value, dict) and value:  # {"done": {...}}
            value = next(iter(value))
        if isinstance(value, str):
            return value.lower()
    if prefetch.get("done") is True or prefetch.get("finished") is True:
        return "done"
    return "unknown"


PREFETCH_DONE = ("done", "finished", "complete", "completed")
PREFETCH_FAILED = ("failed", "error", "aborted")


def status_of(mnt: Path, *flags: str) -> str:
    """What `yetifs status MOUNTPOINT` prints, or an empty string if it fails."""
    try:
        done = subprocess.run([YETIFS, "status", mnt, *flags], capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.decode(errors="replace") if done.returncode == 0 else ""


def wait_for_prefetch(mnt: Path, timeout: float) -> tuple[float | None, str]:
    """Polls `yetifs status MOUNTPOINT --json` (and the text status, should the JSON say
    nothing) until the prefetch is done. Answers the seconds it took, or None and why not."""
    start = time.monotonic()
    state = None
    while time.monotonic() - start < timeout:
        try:
            state = prefetch_state(json.loads(status_of(mnt, "--json")))
        except (ValueError, AttributeError):
            state = None
        if state is None:
            line = next((l for l in status_of(mnt).lower().splitlines() if "prefetch" in l), "")
            words = set(re.findall(r"[a-z]+", line))
            state = next((w for w in (*PREFETCH_DONE, *PREFETCH_FAILED) if w in words), "unknown" if line else None)
        if state in PREFETCH_DONE:
            return time.monotonic() - start, ""
        if state in PREFETCH_FAILED:
            return None, f"the prefetch ended {state} after {time.monotonic() - start:.1f} s; timed anyway"
        if state is None and time.monotonic() - start > 30:
            return None, "`yetifs status` says nothing of a prefetch after 30 s; timed anyway"
        time.sleep(0.2)
    return None, f"the prefetch was not done after {timeout:.0f} s (last state: {state or 'none'}); timed anyway"


def meta_prefetched(sys_: Systems, s: Settings, trees: dict[str, str]) -> list[Meta]:
    """yetifs mounted with `--prefetch-tree`: once the prefetch is done, `ls -lR` and `find`
    over each tree with the page cache dropped before each, on one mount (the prefetch keeps the
    whole account, so what one command leaves in yetifs's memory, the next finds there already)."""
    kind = "yetifs-prefetch"
    commands = ("ls -lR", "find")

    def work(mnt: Path, _proc) -> tuple[list, str]:
        before = sys_.requests(kind)
        took, late = wait_for_prefetch(mnt, s.timeout)
        calls = sys_.requests(kind) - before if before is not None else None
        how = late or f"one mount; the prefetch took {took:.1f} s and {fmt(calls)} requests before these"
        runs = []
        for tree in trees:
            for label in commands:
                drop_caches()
                runs.append(counted(sys_, kind, [*META_COMMANDS[label], mnt / tree], s))
        return runs, how

    log(f"metadata: {LABELS[kind]}")
    result, rss, error = sys_.run(kind, work)
    pairs = [(tree, label) for tree in trees for label in commands]
    if result is None:
        return [Meta(LABELS[kind], label, tree=tree, note=f"not measured: {error}") for tree, label in pairs]
    runs, how = result
    return [
        Meta(LABELS[kind], label, done.secs, calls, rss=rss, note=joined(done.error, how), tree=tree)
        for (tree, label), (done, calls) in zip(pairs, runs)
    ]


def measure_meta(sys_: Systems, s: Settings, content: Content, du: bool = True) -> list[Meta]:
    """`ls -lR`, `find` and (unless `du` is false) `du -s` over both trees (local disk: the one
    on disk, on loopback only), then the prefetched rows."""
    rows = []
    commands = [c for c in META_COMMANDS if du or c not in COLD_ONLY]
    if sys_.tag == "loopback":
        for label in commands:
            cmd = META_COMMANDS[label]
            log(f"metadata {label}: local disk")
            drop_caches(servers_warm=False)
            cold = timed([*cmd, content.tree], s.timeout)
            warm = timed([*cmd, content.tree], s.timeout) if label not in COLD_ONLY else Timed(None)
            rows.append(Meta(LOCAL, label, cold.secs, None, warm.secs, None, note=joined(cold.error, warm.error)))
    for tree in TREES:
        for label in commands:
            for kind in ("yetifs", "rclone-off"):
                if tree == WRITTEN and content.written_error:
                    rows.append(Meta(LABELS[kind], label, tree=tree, note=not_measured(content.written_error)))
                else:
                    rows.append(meta_on_mount(sys_, s, kind, tree, label))
    trees = {t: n for t, n in TREES.items() if not (t == WRITTEN and content.written_error)}
    return rows + meta_prefetched(sys_, s, trees)


def warm(path: Path) -> None:
    """Reads a file, or every file of a tree, into the page cache. The writes compare uploads:
    each writer's source comes from memory, not from disk for whichever runs first after a drop
    of the caches."""
    paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for one in paths:
        with open(one, "rb", buffering=0) as f:
            while f.read(4 * MIB):
                pass


def unmount_until_exit(mnt: Path, proc: subprocess.Popen, timeout: float) -> tuple[Timed, float | None]:
    """`umount`, then the time until the daemon has exited, which under write-back uploads
    everything pending first; and its peak RSS, read until it ends."""
    start = time.monotonic()
    rss = peak_rss_mib(proc)
    done = subprocess.run(["umount", str(mnt)], capture_output=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return Timed(None, f"umount: {lines[0] if lines else done.returncode}"), rss
    while proc.poll() is None:
        rss = peak_rss_mib(proc) or rss
        if time.monotonic() - start > timeout:
            return Timed(None, f"the daemon had not exited {timeout:.0f} s after the unmount"), rss
        time.sleep(0.01)
    secs = time.monotonic() - start
    if proc.returncode != 0:
        return Timed(None, f"the daemon exited with {proc.returncode} after the unmount"), rss
    return Timed(secs), rss


def local_tree(top: Path) -> tuple[int, int]:
    """Files and bytes under a local directory (for rclone: what its WebDAV server holds)."""
    files = size = 0
    if top.is_dir():
        for p in top.rglob("*"):
            if p.is_file():
                files, size = files + 1, size + p.stat().st_size
    return files, size


@dataclass
class Step:
    """One kind of write: what the report calls it, its source, how it is run into a
    directory, the name it leaves there, and (files, bytes) to find on the server afterwards
    (None: not checked)."""

    what: str
    verb: str
    source: Path
    command: Callable[[Path], list]  # the destination directory -> argv
    name: str
    expected: tuple[int, int] | None
    mib: float | None


def measure_writes(sys_: Systems, s: Settings, content: Content, api: Api, webdav_root: Path) -> list[Write]:
    """Every write is timed until its bytes are on the server: `close` uploads for yetifs
    without write-back and for rclone with cache off; with `--write-back`, `yetifs sync` after
    the command, which starts every pending upload at once and returns when they are done (in
    a yetifs without `sync`: the unmount, until the daemon has uploaded what is pending and
    exited). Without write-back yetifs gets the same `yetifs sync` (it returns at once) where
    it exists. After a write the server is asked whether all of it is there; then it is
    removed again."""
    tree_files, tree_bytes = content.mixed_size
    big = Step(
        f"cp of a {s.size_mib} MiB file", "cp", content.big,
        lambda dst: ["cp", content.big, dst / f"copy-{sys_.tag}.bin"], f"copy-{sys_.tag}.bin",
        None, s.size_mib,
    )  # fmt: skip
    untar = Step(
        f"untar of {s.small_files} small files", "tar", content.tarball,
        lambda dst: ["tar", "-xf", content.tarball, "-C", dst], "small", content.small, None,
    )  # fmt: skip
    tree = Step(
        f"cp -r of a {tree_bytes / MIB:,.0f} MiB tree of {tree_files} files", "cp -r",
        content.mixed, lambda dst: ["cp", "-r", content.mixed, dst / "mixed"], "mixed",
        content.mixed_size, tree_bytes / MIB,
    )  # fmt: skip
    rows = []

    def arrived(kind: str, step: Step) -> str:
        """Empty when the server holds all of what `step` wrote, else what it lacks."""
        assert step.expected is not None
        try:
            if kind.startswith("rclone"):
                found = local_tree(webdav_root / step.name)
            else:
                found = api.tree_on_server(step.name)
        except (BenchError, OSError) as e:
            return f"cannot ask the server what arrived: {e}"
        if found == step.expected:
            return ""
        return (
            f"not all on the server when done: {found[0]} of {step.expected[0]} files, "
            f"{found[1]:,} of {step.expected[1]:,} bytes"
        )

    def until_on_server(kind: str, mnt: Path, proc, done: Timed, verb: str) -> tuple[Timed, str, float | None]:
        """The write's time plus what yetifs takes until everything is on the server, a note
        on the split, and the daemon's peak RSS if it has ended: `yetifs sync`; for
        write-back without a `sync` command, the unmount until the daemon has exited (it
        uploads what is pending first)."""
        if done.secs is None or not kind.startswith("yetifs"):
            return done, "", None
        if sys_.no_sync:
            if kind == "yetifs":  # close has uploaded already
                return done, "", None
            gone, rss = unmount_until_exit(mnt, proc, s.timeout)
            if gone.secs is None:
                return gone, "", rss
            how = f"{verb} {done.secs:.2f} s, then the unmount {gone.secs:.2f} s"
            return Timed(done.secs + gone.secs), how, rss
        sync = timed([YETIFS, "sync", mnt], s.timeout)
        if sync.secs is None:
            if kind == "yetifs":
                return done, f"`yetifs sync` after it failed: {sync.error}", None
            return Timed(None, f"`yetifs sync`: {sync.error}"), "", None
        return Timed(done.secs + sync.secs), f"{verb} {done.secs:.2f} s, then `yetifs sync` {sync.secs:.2f} s", None

    def remove(kind: str, mnt: Path, step: Step) -> None:
        """Untimed: what was written goes again, so the next write starts from the same state
        and the WebDAV directory does not grow; nor do the emulator's blobs, since the mixed
        tree's bytes stay on it (`mixed-seed`) and a re-upload is deduplicated. yetifs's trees
        go through the API, one request instead of one per file (which at 20 ms adds up to
        minutes in a full run), and so also after a mount that has ended; rclone's through
        its mount, since `rclone serve webdav` keeps listings for minutes and would still show
        files deleted behind its back."""
        try:
            if step.expected is None:  # the one large file, through the mount
                (mnt / step.name).unlink(missing_ok=True)
                if kind.startswith("yetifs") and not sys_.no_sync:
                    subprocess.run([YETIFS, "sync", mnt], capture_output=True, timeout=s.timeout, check=False)
            elif kind == "local" or kind.startswith("rclone"):
                shutil.rmtree(mnt / step.name, ignore_errors=True)
            else:
                for folder in api.root_folders(step.name):
                    api.delete_folder(folder)
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            log(f"cannot remove {step.name} after {kind}: {e}")

    def write(kind: str, writer: str, mnt: Path, proc, step: Step) -> Write:
        warm(step.source)
        reset_peak_rss(proc)
        before = sys_.requests(kind)
        done, how, ended_rss = until_on_server(kind, mnt, proc, timed(step.command(mnt), s.timeout), step.verb)
        after = sys_.requests(kind)
        calls = after - before if before is not None and after is not None else None
        rss = ended_rss if proc.poll() is not None else peak_rss_mib(proc)
        row = Write(writer, step.what, done.secs, None, rss, joined(done.error, how), calls)
        if done.secs is not None and step.expected is not None:
            missing = arrived(kind, step)
            if missing:
                row.secs, row.note = None, joined(f"took {done.secs:.2f} s", missing, how)
        if row.secs and step.mib:
            row.mib_per_sec = step.mib / row.secs
        remove(kind, mnt, step)
        return row

    log("writes: curl upload")
    drop_caches()
    before = sys_.requests("curl")
    up = timed(api.curl_upload_cmd(content.big, None), s.timeout)
    calls = sys_.requests("curl") - before if before is not None else None
    rows.append(Write(CURL_UPLOAD, big.what, up.secs, mib_per_sec(s.size_mib, up), note=up.error or "", requests=calls))

    log("writes: curl, one file after another")
    warm(content.mixed)
    before = sys_.requests("curl")
    start = time.monotonic()
    try:
        upload_tree(api, content.mixed, "mixed", 1, s.timeout)
        each = Timed(time.monotonic() - start)
    except (BenchError, OSError) as e:
        each = Timed(None, str(e))
    row = Write(CURL_EACH, tree.what, each.secs, note=each.error or "")
    row.requests = sys_.requests("curl") - before if before is not None else None
    if each.secs is not None:
        missing = arrived("curl", tree)
        if missing:
            row.secs, row.note = None, joined(f"took {each.secs:.2f} s", missing)
        elif tree.mib:
            row.mib_per_sec = tree.mib / each.secs
    remove("curl", Path(), tree)
    rows.append(row)

    log("writes: local disk")
    local = sys_.sup.workdir / "run" / f"{sys_.tag}-local-writes"
    local.mkdir(parents=True)
    drop_caches(servers_warm=False)
    for step, label in ((big, "cp"), (untar, "tar"), (tree, "cp -r")):
        warm(step.source)
        done = timed(["sh", "-c", '"$@" && sync', "sh", *step.command(local)], s.timeout)
        row = Write(f"{LOCAL} ({label}, then sync)", step.what, done.secs, note=done.error or "")
        if done.secs and step.mib:
            row.mib_per_sec = step.mib / done.secs
        rows.append(row)
        remove("local", local, step)
    shutil.rmtree(local)

    plan = {
        "yetifs": (YETIFS_CLOSE, (big, untar, tree)),
        # cp of the one large file is left out: the mixed tree has large files, and a run
        # should stay within minutes.
        "yetifs-wb": (LABELS["yetifs-wb"], (untar, tree)),
        "rclone-off": (LABELS["rclone-off"], (big, untar, tree)),
    }
    for kind, (writer, steps) in plan.items():
        # Write-back settled by the unmount (no `yetifs sync`) needs a mount per write.
        groups = [(step,) for step in steps] if kind == "yetifs-wb" and sys_.no_sync else [steps]
        for group in groups:

            def work(mnt: Path, proc, kind=kind, writer=writer, group=group) -> list[Write]:
                return [write(kind, writer, mnt, proc, step) for step in group]

            log(f"writes: {writer}")
            result, _rss, error = sys_.run(kind, work)
            if result is None:
                rows += [Write(writer, step.what, note=f"not measured: {error}") for step in group]
            else:
                rows += result
    # Grouped by what was written, so that each writer sits beside its baseline.
    order = [big.what, untar.what, tree.what]
    return sorted(rows, key=lambda r: order.index(r.what))


def write_tree(sup: Supervisor, s: Settings, emu: Emulator, api: Api, content: Content) -> str:
    """Puts the small-file tree on the emulator a second time, as `written/`, written by yetifs:
    `cp -r` into a mount (with write-back where `yetifs sync` can settle it), `yetifs sync`,
    the unmount. Answers why it could not, or an empty string."""
    sys_ = Systems(sup, s, emu, "", "setup", None)
    if sys_.no_yetifs:
        return sys_.no_yetifs
    kind = "yetifs" if sys_.no_write_back or sys_.no_sync else "yetifs-wb"

    def work(mnt: Path, _proc) -> str:
        done = timed(["cp", "-r", content.tree, mnt / WRITTEN], s.timeout)
        if done.secs is None:
            return f"`cp -r` into the mount: {done.error}"
        if not sys_.no_sync:
            sync = timed([YETIFS, "sync", mnt], s.timeout)
            if sync.secs is None:
                return f"`yetifs sync`: {sync.error}"
        return ""

    log(f"writing {WRITTEN}/ through a yetifs mount ({LABELS[kind]})")
    start = time.monotonic()
    result, _rss, error = sys_.run(kind, work)
    if error or result:
        return error or str(result)
    found, expected = api.tree_on_server(WRITTEN), local_tree(content.tree)
    if found != expected:
        return f"{WRITTEN}/ on the server has {found[0]} of {expected[0]} files, {found[1]:,} of {expected[1]:,} bytes"
    log(f"{WRITTEN}/ is on the server after {time.monotonic() - start:.1f} s")
    return ""


# ---------------------------------------------------------------------------------------------
# Verdicts and the report


@dataclass
class Check:
    """One target: what was measured, what it must reach, and whether it did."""

    name: str
    measured: str
    target: str
    passed: bool
    # For the charts: the ratio measured, the bound it must reach, and whether it must stay at
    # or below the bound (a time) rather than reach it (a throughput). None: not a ratio.
    ratio: float | None = None
    bound: float | None = None
    at_most: bool = False


def not_measured(why: str) -> str:
    """A check's figure when a row behind it is missing; rows may say "not measured" already."""
    return f"not measured: {why.removeprefix('not measured: ') or 'a figure is missing'}"


def ratio_check(name: str, num: float | None, den: float | None, at_least: float, what: str, why: str) -> Check:
    target = f"≥ {at_least:g}x"
    if num is None or den is None or den == 0:
        return Check(name, not_measured(why), target, False)
    ratio = num / den
    return Check(name, f"{ratio:.2f}x ({what})", target, ratio >= at_least, ratio, at_least)


def ratio_at_most(
    name: str, num: float | None, den: float | None, at_most: float, what: str, why: str, target: str = ""
) -> Check:
    """A ratio that must stay low: a time against another's."""
    target = target or f"≤ {at_most:g}x"
    if num is None or den is None or den == 0:
        return Check(name, not_measured(why), target, False, bound=at_most, at_most=True)
    ratio = num / den
    return Check(name, f"{ratio:.2f}x ({what})", target, ratio <= at_most, ratio, at_most, True)


# Untar time of yetifs over rclone's (cache off) in the last full run before write-back
# (docs/benchmarks.md at e45f007: 10.99 s / 65.52 s on loopback, 56.02 s / 143.70 s at 20 ms):
# "no slower than before" can only be a ratio, since absolute times do not carry over between
# runs on a shared machine. Keyed by the added latency.
UNTAR_BEFORE = {None: 0.17, "20ms": 0.39}


def find(rows: list, **match):
    for row in rows:
        if all(getattr(row, k) == v for k, v in match.items()):
            return row
    return None


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def checks(p: Profile, s: Settings) -> list[Check]:
    out = []
    y = find(p.seq, reader="yetifs") or Seq("yetifs")
    memfs = find(p.seq, reader=LABELS["memfs"])
    off = find(p.seq, reader=LABELS["rclone-off"]) or Seq("")
    full = find(p.seq, reader=LABELS["rclone-full"]) or Seq("")
    if memfs is not None:
        out.append(ratio_check(
            "cold sequential read vs the FUSE ceiling", y.cold, memfs.cold, 0.8,
            f"yetifs {fmt(y.cold)} MiB/s, memfs {fmt(memfs.cold)} MiB/s", y.note or memfs.note))  # fmt: skip
    curl = find(p.seq, reader=CURL) or Seq("")
    out.append(ratio_at_most(
        "cold sequential read: daemon CPU per GiB vs curl", y.cold_cpu, curl.cold_cpu, 3.0,
        f"yetifs {fmt(y.cold_cpu, 2)} CPU-s/GiB, curl {fmt(curl.cold_cpu, 2)} CPU-s/GiB",
        y.note or curl.note))  # fmt: skip
    best = max((r for r in (off, full) if r.cold is not None), key=lambda r: r.cold, default=None)
    out.append(ratio_check(
        "cold sequential read vs rclone (its better cache mode)", y.cold,
        best.cold if best else None, 1.5,
        f"yetifs {fmt(y.cold)} MiB/s, {best.reader if best else 'rclone'} {fmt(best.cold if best else None)} MiB/s",
        y.note or off.note or full.note))  # fmt: skip
    out.append(ratio_check(
        "warm re-read vs rclone (cache full)", y.warm, full.warm, 2.0,
        f"yetifs {fmt(y.warm)} MiB/s, rclone {fmt(full.warm)} MiB/s", y.note or full.note))  # fmt: skip
    single = find(p.seq, reader=SINGLE) or Seq("")
    if p.latency:
        out.append(ratio_check(
            f"cold sequential read at {p.latency} vs one stream without read-ahead", y.cold,
            single.cold, 3.0, f"yetifs {fmt(y.cold)} MiB/s, single stream {fmt(single.cold)} MiB/s",
            y.note or single.note))  # fmt: skip
    ls = find(p.meta, reader="yetifs", command="ls -lR") or Meta("yetifs", "ls -lR")
    target = "0 API calls and ≥ 5x faster than cold"
    if ls.cold_secs is None or ls.warm_secs is None or ls.warm_calls is None:
        out.append(Check("`ls -lR` warm", f"not measured: {ls.note or 'a figure is missing'}", target, False))
    else:
        speedup = ls.cold_secs / max(ls.warm_secs, 1e-6)
        out.append(Check(
            "`ls -lR` warm", f"{ls.warm_calls} API calls, {speedup:.1f}x faster than cold "
            f"({ls.cold_secs:.2f} s → {ls.warm_secs:.2f} s)", target,
            ls.warm_calls == 0 and speedup >= 5))  # fmt: skip
    cp = find(p.writes, writer=YETIFS_CLOSE, what=f"cp of a {s.size_mib} MiB file") or Write("", "")
    curl = find(p.writes, writer=CURL_UPLOAD) or Write("", "")
    out.append(ratio_check(
        "`cp` into the mount vs raw curl upload", cp.mib_per_sec, curl.mib_per_sec, 0.85,
        f"yetifs {fmt(cp.mib_per_sec)} MiB/s, curl {fmt(curl.mib_per_sec)} MiB/s", cp.note or curl.note))  # fmt: skip
    out += write_back_checks(p, s)
    limit = s.memory_cache_mib + 64
    target = f"≤ {limit} MiB (memory cache {s.memory_cache_mib} MiB + 64)"
    if y.rss is None:
        out.append(Check(f"peak RSS streaming {s.size_mib} MiB", f"not measured: {y.note or 'no figure'}", target, False))
    else:
        out.append(Check(f"peak RSS streaming {s.size_mib} MiB", f"{y.rss:.0f} MiB", target, y.rss <= limit))
    return out


def secs_and_requests(row: Meta) -> str:
    """A cold time with its requests beside it, e.g. `7.5 s / 10,502 requests`."""
    secs = "—" if row.cold_secs is None else f"{row.cold_secs:.{1 if row.cold_secs >= 10 else 2}f} s"
    return f"{secs} / {'requests not counted' if row.cold_calls is None else f'{row.cold_calls:,} requests'}"


def meta_checks(p: Profile) -> list[Check]:
    """Cold `ls -lR` and `find` of each tree against rclone with cache off: a time, so at most
    0.8x of rclone's."""
    out = []
    for tree, what in TREES.items():
        for command in ("ls -lR", "find"):
            y = find(p.meta, reader="yetifs", command=command, tree=tree) or Meta("yetifs", command)
            r = find(p.meta, reader=LABELS["rclone-off"], command=command, tree=tree) or Meta("", command)
            out.append(ratio_at_most(
                f"cold `{command}` of {what} vs rclone", y.cold_secs, r.cold_secs, 0.8,
                f"yetifs {secs_and_requests(y)}, rclone {secs_and_requests(r)}", y.note or r.note))  # fmt: skip
    return out


def profile_checks(p: Profile, s: Settings) -> list[Check]:
    """Every check of a profile: those of a full one, then the metadata lines."""
    return (checks(p, s) if p.full else []) + meta_checks(p)


def write_back_checks(p: Profile, s: Settings) -> list[Check]:
    """Writes timed until they are on the server: untar against rclone with cache off, with
    and without write-back, and `cp -r` of the mixed tree against curl uploading its files one
    after another."""
    out = []
    untar = f"untar of {s.small_files} small files"
    wb = find(p.writes, writer=LABELS["yetifs-wb"], what=untar) or Write("", "")
    close = find(p.writes, writer=YETIFS_CLOSE, what=untar) or Write("", "")
    off = find(p.writes, writer=LABELS["rclone-off"], what=untar) or Write("", "")
    out.append(ratio_at_most(
        "untar until on the server, with write-back, vs rclone (cache off)", wb.secs, off.secs, 0.25,
        f"yetifs --write-back {fmt(wb.secs, 2)} s, rclone {fmt(off.secs, 2)} s", wb.note or off.note))  # fmt: skip
    name = "untar until on the server, without write-back, vs rclone: no slower than before"
    before = UNTAR_BEFORE.get(p.latency)
    if before is None:
        out.append(Check(name, f"not measured: no figure from before at {p.latency}", "—", False))
    else:
        limit = round(before * 1.1, 2)
        out.append(ratio_at_most(
            name, close.secs, off.secs, limit,
            f"yetifs {fmt(close.secs, 2)} s, rclone {fmt(off.secs, 2)} s", close.note or off.note,
            f"≤ {limit:g}x ({before:g}x before write-back, + 10 %)"))  # fmt: skip
    tree = next((r for r in p.writes if r.what.startswith("cp -r") and r.writer == CURL_EACH), Write("", ""))
    cp = find(p.writes, writer=LABELS["yetifs-wb"], what=tree.what) or Write("", "")
    out.append(ratio_check(
        "`cp -r` of the mixed tree until on the server, with write-back, vs curl one file after another",
        cp.mib_per_sec, tree.mib_per_sec, 1.0,
        f"yetifs --write-back {fmt(cp.mib_per_sec)} MiB/s, curl {fmt(tree.mib_per_sec)} MiB/s",
        cp.note or tree.note))  # fmt: skip
    return out


def machine() -> list[str]:
    def first(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, check=False, timeout=30)
            lines = done.stdout.decode(errors="replace").strip().splitlines()
            return lines[0] if lines else "?"
        except OSError:
            return "?"

    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    os_name = "?"
    if Path("/etc/os-release").exists():
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
        os_name = match.group(1) if match else "?"
    commit = first(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {mem}; {os_name}, Linux {platform.release()}",
        f"- yetifs {commit}; {first(['rclone', 'version'])}; {first(['fio', '--version'])}; "
        f"{' '.join(first(['curl', '--version']).split()[:2])}",
    ]


def title(p: Profile) -> str:
    if p.latency is None:
        return "Loopback"
    return f"{p.latency} added to every request" + ("" if p.full else " (metadata only)")


def chart_path(p: Profile, s: Settings) -> Path:
    """Where a profile's chart goes: beside the report, in a folder named after it
    (docs/benchmarks.md: docs/benchmarks/ratios-20ms.svg)."""
    return s.out.parent / s.out.stem / f"ratios-{p.latency or 'loopback'}.svg"


def render_checks(p: Profile, s: Settings) -> list[str]:
    """The verdicts of a profile, then its chart of their ratios."""
    out = ["| check | measured | target | verdict |", "|---|---|---|---|"]
    for c in profile_checks(p, s):
        out.append(f"| {c.name} | {joined(c.measured)} | {c.target} | {'PASS' if c.passed else 'FAIL'} |")
    link = chart_path(p, s).relative_to(s.out.parent).as_posix()
    return out + ["", f"![yetifs against its baselines, {title(p).lower()}]({link})"]


def render_meta(p: Profile, s: Settings) -> list[str]:
    """The metadata table: every tree, command and reader."""
    out = ["", f"### Metadata: two trees of {s.files:,} files in {s.folders:,} folders", ""]
    out += [
        "`tree/`: foreign files, uploaded through the API by the bench (without yetifs's metadata, a",
        f"file's dates cost a `file/info`); `{WRITTEN}/`: the same copied in by `cp -r` through a yetifs",
        "mount (its files' dates are in the listing). rclone serves the same two trees. `du -s` is",
        "timed cold only, and not in the metadata-only profile.",
        "",
    ]
    out += ["| reader | tree | command | cold s | cold requests | warm s | warm requests | peak RSS MiB | note |",
            "|---|---|---|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in p.meta:
        tree = "on disk" if r.reader == LOCAL else f"`{r.tree}/`"
        out.append(
            f"| {r.reader} | {tree} | `{r.command}` | {fmt(r.cold_secs, 2)} | {fmt(r.cold_calls)} | "
            f"{fmt(r.warm_secs, 2)} | {fmt(r.warm_calls)} | {fmt(r.rss)} | {joined(r.note)} |"
        )
    return out


def render(p: Profile, s: Settings) -> list[str]:
    """The markdown of one profile; one of the metadata only has just those rows."""
    if p.full:
        return render_profile(p, s)
    return [f"## {title(p)}", "", *render_checks(p, s), *render_meta(p, s), ""]


def render_profile(p: Profile, s: Settings) -> list[str]:
    """The markdown of one profile: the verdicts first, then every figure behind them."""
    out = [f"## {title(p)}", ""]
    out += render_checks(p, s)
    curl = find(p.seq, reader=CURL)
    out += ["", f"### Sequential read of a {s.size_mib} MiB file (`dd bs=1M`, best of {s.repeat})", ""]
    out += ["| reader | cold MiB/s | cold CPU-s per GiB | warm MiB/s | cold vs curl | peak RSS MiB | note |",
            "|---|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in p.seq:
        vs = f"{r.cold / curl.cold:.2f}x" if r.cold and curl and curl.cold else "—"
        out.append(
            f"| {r.reader} | {fmt(r.cold)} | {fmt(r.cold_cpu, 2)} | {fmt(r.warm)} | {vs} | {fmt(r.rss)} | "
            f"{joined(r.note)} |"
        )
    out += ["", f"### Random reads (fio, {s.fio_jobs} jobs, psync, {s.fio_secs} s each)", ""]
    out += ["| reader | block | cold IOPS | cold p99 ms | warm IOPS | warm p99 ms | peak RSS MiB | note |",
            "|---|---|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in p.rand:
        out.append(
            f"| {r.reader} | {r.block} | {fmt(r.cold_iops)} | {fmt(r.cold_p99_ms, 2)} | "
            f"{fmt(r.warm_iops)} | {fmt(r.warm_p99_ms, 2)} | {fmt(r.rss)} | {joined(r.note)} |"
        )
    out += render_meta(p, s)
    out += ["", "### Writes, until on the server", ""]
    out += ["| writer | what | seconds | MiB/s | vs curl | requests | peak RSS MiB | note |",
            "|---|---|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in p.writes:
        # Throughput against curl writing the same thing (the first row of that `what`).
        base = next((b for b in p.writes if b.what == r.what and b.writer in (CURL_UPLOAD, CURL_EACH)), None)
        vs = f"{r.mib_per_sec / base.mib_per_sec:.2f}x" if r.mib_per_sec and base and base.mib_per_sec else "—"
        out.append(
            f"| {r.writer} | {r.what} | {fmt(r.secs, 2)} | {fmt(r.mib_per_sec)} | {vs} | "
            f"{fmt(r.requests)} | {fmt(r.rss)} | {joined(r.note)} |"
        )
    return out + [""]


def xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def chart_scale(bars: list[Check]) -> tuple[float, float]:
    """The x axis of a chart: its end and its tick step. It shows every target with room to
    spare, and ratios up to three times the largest target or 3x (larger bars are cut, their
    figure still written)."""
    bounds = [c.bound for c in bars if c.bound is not None]
    ratios = [c.ratio for c in bars if c.ratio is not None]
    top = max(bounds, default=1.0)
    end = max(1.25 * top, min(max(ratios, default=0.0) * 1.08, max(3 * top, 3.0)), 1.1)
    step = next(st for st in (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100) if end / st <= 8)
    return step * -(-end // step), step


def chart_svg(heading: str, bars: list[Check]) -> str:
    """A horizontal bar chart of the ratio checks: one row per check, its name and target above
    a bar (green PASS, red FAIL) with the target drawn across it as a black line and 1x (as fast
    as the baseline) dashed."""
    width, left, right, row, top = 900, 16, 770, 50, 74
    end, step = chart_scale(bars)
    height = top + row * max(len(bars), 1) + 40

    def x(value: float) -> float:
        return left + (right - left) * min(value, end) / end

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="16" font-weight="bold">{xml(heading)}</text>',
        f'<text x="{left}" y="46" fill="#444">Each bar: yetifs as a multiple of its baseline '
        "(a time: lower is better; a throughput: higher is better).</text>",
        f'<text x="{left}" y="64" fill="#444">Black line: the target (green: reached, red: not); '
        "dashed: 1x, the same as the baseline.</text>",
    ]
    tick = 0.0
    while tick <= end + 1e-9:
        out.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{height - 34}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{height - 18}" text-anchor="middle" fill="#444">{tick:g}x</text>')
        tick += step
    out.append(f'<line x1="{x(1):.1f}" y1="{top}" x2="{x(1):.1f}" y2="{height - 34}" stroke="#888" '
               'stroke-dasharray="5,4"/>')  # fmt: skip
    for i, c in enumerate(bars):
        y = top + i * row
        sign = "≤" if c.at_most else "≥"
        label = f"{c.name.replace('`', '')}  (target {sign} {c.bound:g}x)"
        out.append(f'<text x="{left}" y="{y + 16}">{xml(label)}</text>')
        # Figures start right of both the bar and the target line.
        after = max(x(c.ratio or 0), x(c.bound if c.bound is not None else 0)) + 6
        if c.ratio is None:
            out.append(f'<text x="{after:.1f}" y="{y + 37}" fill="#888" font-style="italic">not measured</text>')
        else:
            colour = "#2e8b3e" if c.passed else "#c8372d"
            out.append(f'<rect x="{left}" y="{y + 23}" width="{x(c.ratio) - left:.1f}" height="18" fill="{colour}"/>')
            cut = "» " if c.ratio > end else ""
            verdict = "PASS" if c.passed else "FAIL"
            out.append(f'<text x="{after:.1f}" y="{y + 37}" font-weight="bold" fill="{colour}">'
                       f"{cut}{c.ratio:.2f}x {verdict}</text>")  # fmt: skip
        if c.bound is not None:
            out.append(f'<line x1="{x(c.bound):.1f}" y1="{y + 19}" x2="{x(c.bound):.1f}" y2="{y + 45}" '
                       'stroke="black" stroke-width="2.5"/>')  # fmt: skip
    if not bars:
        out.append(f'<text x="{left}" y="{top + 30}" fill="#888">no ratios measured</text>')
    return "\n".join(out + ["</svg>", ""])


def write_chart(p: Profile, s: Settings) -> None:
    """The chart of a profile's ratio checks, where its report links it."""
    bars = [c for c in profile_checks(p, s) if c.bound is not None]
    path = chart_path(p, s)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chart_svg(f"yetifs against its baselines: {title(p).lower()}", bars))


def write_report(
    s: Settings, profiles: list[Profile], workdir: Path, started: datetime.datetime, took: float
) -> None:
    """Writes the report; the scratch directory's path is shown as `$WORK`."""
    out = [
        "# Benchmarks",
        "",
        "yetifs side by side with what people would use instead and with the machine's own limits,",
        "measured in one run. The machines are shared and noisy, so the verdicts are ratios between",
        "readers measured minutes apart in the same run, never absolute figures.",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {took / 60:.1f} minutes"
        + (", **quick run** (small sizes)" if s.quick else "")
        + ":",
        *machine(),
        f"- Sizes: one {s.size_mib} MiB file; {s.files:,} files of 256 B–4 KiB in {s.folders:,} "
        f"folders; {s.small_files:,} files of 512 B–8 KiB for untar; a tree of mixed sizes for "
        f"`cp -r`: half of {s.size_mib} MiB in 3 large files, files of 1–10 MiB up to 95 % of it, "
        f"{s.mixed_small_files:,} files of 1–64 KiB. yetifs mounted with "
        f"`--memory-cache {s.memory_cache_mib}MiB --dir-ttl 3600`.",
        "",
        "## How to run",
        "",
        "`scripts/bench` (root; about half an hour) or `scripts/bench --quick` (a few minutes).",
        "It installs fio, curl, rclone and fuse3 from the distribution if missing, builds the release",
        "binaries, and runs everything below on loopback, then again with the emulator at",
        f"`--faults latency={s.latency}` (rclone gets the same delay per request from a small proxy",
        "in front of `rclone serve webdav`)"
        + (f", then the metadata rows alone at `latency={s.far_latency}`" if s.far_latency else "")
        + ". Sizes can be changed with `BENCH_*` variables (see the script's header). Each",
        f"profile's ratio checks are drawn in `{s.out.stem}/ratios-*.svg` beside this file.",
        "",
        "- yetifs: `yetifs mount` over `yetifs serve --ranges correct` on 127.0.0.1.",
        "- raw curl: the file's `download_url` fetched by `curl` in one stream; the upload is a",
        "  `file/upload` multipart POST by `curl`.",
        "- single stream without read-ahead: 1 MiB ranged GETs one after another on one",
        "  connection, as a FUSE filesystem without prefetch would fetch.",
        "- rclone: `rclone mount :webdav:` over `rclone serve webdav` of the same bytes on",
        "  127.0.0.1, `--vfs-cache-mode off` and `full`, given yetifs's cache times (`--dir-cache-time",
        "  1h --attr-timeout 1h`). Writes use `off`, where `close` returns after the upload, as with",
        "  yetifs without write-back (in `full` mode the upload happens later).",
        "- Writes are timed until the bytes are on the server. Without write-back `close` uploads",
        "  (yetifs, rclone with cache off); yetifs also gets `yetifs sync MOUNTPOINT` after the",
        "  command where that exists (it returns at once). `yetifs --write-back` (the default delay",
        "  of 5 s and `--transfers`; `close` returns before the upload) is timed as the command",
        "  then `yetifs sync`, which starts every pending upload at once and returns when all are",
        "  on the server (a yetifs without `sync`: then `umount` until the daemon, which uploads",
        "  what is pending first, has exited; a mount per write). After each write the server is",
        "  asked (API listings; rclone's WebDAV directory) whether every file and byte is there:",
        "  a time without all of it is not kept. What was written is then deleted again.",
        "- `cp -r` of the mixed tree against curl uploading the same files one after another: its",
        "  folders created by API calls, then one `curl` `file/upload` POST per file. The tree's",
        "  bytes also stay on the emulator (`mixed-seed`), so every upload of them is deduplicated",
        "  alike. Sources are read into the page cache first. \"vs curl\" is throughput against",
        "  the curl row of the same write.",
        "- FUSE ceiling: `examples/memfs.rs`, one file served from memory with yetifs's kernel",
        "  settings (1 MiB requests, async reads, 8 MiB kernel read-ahead): what any FUSE",
        "  filesystem can reach on this machine.",
        "- Cold: a fresh mount with empty caches after `echo 3 > /proc/sys/vm/drop_caches`; the",
        "  servers' files (the emulator's blobs and database, the WebDAV directory) are then read",
        "  back into the page cache, since a real server is another machine with caches of its own",
        "  and the FUSE ceiling reads from memory too (local disk runs stay cold). Warm:",
        "  the same command again right after, nothing dropped. Sequential reads are run",
        f"  {s.repeat} time(s), each cold run on a fresh mount, and the best run is kept (noise on a",
        "  shared machine only ever slows a run down).",
        "- Metadata: two trees of the same shape. `tree/` is uploaded through the API by the bench:",
        "  foreign files, without yetifs's metadata, so a file's dates cost yetifs a `file/info`.",
        f"  `{WRITTEN}/` is the same copied into a yetifs mount by `cp -r` (then `yetifs sync`, the",
        "  unmount) before the profiles run: its files carry their dates in the listing (`fileType`),",
        "  so a cold `ls -lR` there costs listings only. rclone's WebDAV root holds both (`cp -al`).",
        "  Each cold command runs on a fresh mount, the warm one right after on the same mount.",
        "  \"yetifs, prefetched tree\": `yetifs mount --prefetch-tree`, which walks the account in",
        "  the background; the commands start once `yetifs status --json` says the prefetch is done,",
        "  all on one mount, the page cache dropped before each.",
        "- CPU-s per GiB (sequential reads): the CPU-seconds (user and system) spent on the cold",
        "  read by curl's own process (`getrusage` of the child), and by a mount's daemon (utime and",
        "  stime from `/proc/PID/stat` before and after `dd`; `dd` itself not counted), per GiB;",
        "  the lowest of the runs. Unlike wall time, CPU-seconds hardly move on a shared machine.",
        "- Peak RSS: VmHWM of the daemon, reset (`clear_refs`) before each measurement.",
        "- Requests: API calls from the emulator's access log (downloads not counted), for yetifs",
        "  and for curl; for rclone, WebDAV requests counted by the delay proxy (so only in the",
        "  latency runs).",
        "",
    ]
    for p in profiles:
        out += render(p, s)
        write_chart(p, s)
    text = "\n".join(out).replace(str(workdir), "$WORK").replace(str(REPO), ".")
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(text)
    log(f"wrote {s.out}")


# ---------------------------------------------------------------------------------------------
# The run


def run(s: Settings, sup: Supervisor) -> list[Profile]:
    work = sup.workdir
    # The content (big file, mixed tree and small trees), the mixed tree's copy on the emulator
    # (`mixed-seed`), one mount's caches (up to twice the big file) and one copy being written,
    # plus room for everything else.
    need = 6 * s.size_mib * MIB + 1024 * MIB
    free = shutil.disk_usage(work).free
    if free < need:
        raise BenchError(
            f"only {free / MIB / 1024:.1f} GiB free under {work}; the run needs "
            f"{need / MIB / 1024:.1f} GiB (6 x {s.size_mib} MiB + 1 GiB): free some space, "
            "or point BENCH_DIR at a larger disk, or lower BENCH_SIZE_MIB"
        )
    log(f"making content in {work}")
    content = make_content(work / "content", s, full=bool(s.only - {"seq"}))
    webdav_root = work / "webdav"
    webdav_root.mkdir()
    os.link(content.big, webdav_root / BIG_NAME)
    for tree in TREES:
        subprocess.run(["cp", "-al", str(content.tree), str(webdav_root / tree)], check=True)

    emu_data = work / "emulator"
    SERVER_DIRS[:] = [emu_data, webdav_root]
    emu = start_emulator(sup, emu_data, None, "loopback-serve")
    api = Api(emu.api_url, emu.key1, emu.key2)
    log("uploading the content to the emulator")
    up = timed(api.curl_upload_cmd(content.big, None), s.timeout)
    if up.error:
        raise BenchError(f"uploading {BIG_NAME}: {up.error}")
    populate(api, content)
    # The mixed tree's bytes stay on the emulator, so that every writer's upload of them is
    # deduplicated alike (and the blob store does not grow by a copy per writer, which each
    # cold run would read back into the page cache).
    if "writes" in s.only:
        upload_tree(api, content.mixed, "mixed-seed", 8, s.timeout)
    if "meta" in s.only:
        content.written_error = write_tree(sup, s, emu, api, content)
        if content.written_error:
            log(f"no {WRITTEN}/ tree: {content.written_error}")

    webdav_port = free_port()
    webdav = sup.spawn("webdav", [
        "rclone", "serve", "webdav", webdav_root, "--addr", f"127.0.0.1:{webdav_port}",
        "--config", "/dev/null",
    ])  # fmt: skip
    wait_port(webdav_port, webdav, "rclone serve webdav")

    profiles = []
    # (tag, added latency, everything or the metadata only)
    plan = [("loopback", None, True)]
    if not s.skip_latency:
        plan.append(("latency", s.latency, True))
        if s.far_latency and "meta" in s.only:
            plan.append(("far", s.far_latency, False))
    for tag, latency, full in plan:
        proxy = None
        count_file = None
        webdav_url = f"http://127.0.0.1:{webdav_port}/"
        if latency is not None:
            sup.stop(emu.proc)
            emu = start_emulator(sup, emu_data, f"latency={latency}", f"{tag}-serve")
            api = Api(emu.api_url, emu.key1, emu.key2)
            proxy_port = free_port()
            # One per profile: a new proxy counts from 0, and a file left by the last would be
            # read as the count before its first request.
            count_file = work / "logs" / f"{tag}-webdav-requests"
            proxy = sup.spawn("delay-proxy", [
                sys.executable, Path(__file__).resolve(), "--delay-proxy", proxy_port,
                webdav_port, parse_duration(latency), count_file,
            ])  # fmt: skip
            wait_port(proxy_port, proxy, "the delay proxy")
            webdav_url = f"http://127.0.0.1:{proxy_port}/"
        log(f"--- {tag} ---")
        url = api.download_url(api.root_file_id(BIG_NAME))
        systems = Systems(sup, s, emu, webdav_url, tag, count_file)
        profile = Profile(tag, latency, full)
        if full and "seq" in s.only:
            profile.seq = measure_seq(systems, s, content, url)
        if full and "rand" in s.only:
            profile.rand = measure_rand(systems, s, content)
        if "meta" in s.only:
            profile.meta = measure_meta(systems, s, content, du=full)
        if full and "writes" in s.only:
            profile.writes = measure_writes(systems, s, content, api, webdav_root)
        profiles.append(profile)
        if proxy is not None:
            sup.stop(proxy)
        lines = render(profile, s)
        for line in lines[: lines.index("", 2)]:  # the title and the verdicts
            print(line, flush=True)
    return profiles


def main(argv: list[str]) -> int:
    if argv[:1] == ["--delay-proxy"]:
        listen, target, delay, count_file = argv[1:5]
        delay_proxy(int(listen), int(target), float(delay), Path(count_file))
        return 0
    try:
        s = Settings.load(argv)
    except BenchError as e:
        log(str(e))
        return 2
    for tool in (YETIFS, MEMFS):
        if not tool.exists():
            log(f"{tool} is missing: build with `cargo build --release --bin yetifs --example memfs`")
            return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="yetifs-bench.", dir=os.environ.get("BENCH_DIR")))
    sup = Supervisor(workdir)

    def interrupted(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    status = 0
    try:
        profiles = run(s, sup)
        write_report(s, profiles, workdir, started, time.monotonic() - clock)
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        status = 130
    except (BenchError, OSError, subprocess.CalledProcessError) as e:
        log(f"failed: {e}")
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        sup.cleanup()
        if os.environ.get("BENCH_KEEP") == "1":
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
