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
    fio_secs: int
    fio_jobs: int
    repeat: int
    latency: str
    memory_cache_mib: int
    timeout: float
    out: Path
    skip_latency: bool

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
            fio_secs=env_int("BENCH_FIO_SECS", 8, 3),
            fio_jobs=env_int("BENCH_FIO_JOBS", 4, 4),
            repeat=max(1, env_int("BENCH_REPEAT", 2, 1)),
            latency=os.environ.get("BENCH_LATENCY", "20ms"),
            memory_cache_mib=env_int("BENCH_MEMORY_CACHE_MIB", 128, 128),
            timeout=float(env_int("BENCH_TIMEOUT_SECS", 600, 300)),
            out=Path(os.environ.get("BENCH_OUT", REPO / "docs" / "benchmarks.md")),
            skip_latency=os.environ.get("BENCH_SKIP_LATENCY", "0") == "1",
        )


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


# ---------------------------------------------------------------------------------------------
# The content: one large file, a tree of small files, a tarball of small files


@dataclass
class Content:
    """Where the generated content lies on local disk."""

    big: Path
    tree: Path
    tarball: Path


def make_content(root: Path, s: Settings) -> Content:
    rng = random.Random(20261123)
    root.mkdir(parents=True)
    big = root / BIG_NAME
    with open(big, "wb") as f:
        for _ in range(s.size_mib):
            f.write(rng.randbytes(MIB))
    tree = root / "tree"
    for i in range(s.files):
        folder = tree / f"d{i % s.folders:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.txt").write_bytes(rng.randbytes(rng.randint(256, 4096)))
    tarball = root / "small.tar"
    staging = root / "small"
    for i in range(s.small_files):
        folder = staging / f"s{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"n{i:05d}.dat").write_bytes(rng.randbytes(rng.randint(512, 8192)))
    with tarfile.open(tarball, "w") as tar:
        tar.add(staging, arcname="small")
    shutil.rmtree(staging)
    return Content(big, tree, tarball)


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


class Systems:
    """Starts the readers under test, each on a fresh mountpoint with fresh caches, and runs a
    measurement on them."""

    KINDS = ("yetifs", "rclone-off", "rclone-full", "memfs")

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
        self.count = 0

    def requests(self, kind: str) -> int | None:
        """Requests the reader's server has answered so far, where they are counted: the
        emulator's access log for yetifs, the delay proxy for rclone."""
        if kind == "yetifs":
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
        if kind == "yetifs":
            if self.no_yetifs:
                raise BenchError(self.no_yetifs)
            args = [
                YETIFS, "mount", "--api-url", self.emu.api_url, "--key1", self.emu.key1,
                "--key2", self.emu.key2, "--cache-dir", base / "cache", "--cache-size",
                f"{2 * self.s.size_mib + 256}MiB", "--memory-cache",
                f"{self.s.memory_cache_mib}MiB", "--dir-ttl", "3600", mnt,
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
    """A sequential read of the large file: MiB/s cold and warm, peak RSS of the daemon."""

    reader: str
    cold: float | None = None
    warm: float | None = None
    rss: float | None = None
    note: str = ""


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
    reader: str
    command: str
    cold_secs: float | None = None
    cold_calls: int | None = None
    warm_secs: float | None = None
    warm_calls: int | None = None
    rss: float | None = None
    note: str = ""


@dataclass
class Write:
    writer: str
    what: str
    secs: float | None = None
    mib_per_sec: float | None = None
    rss: float | None = None
    note: str = ""


@dataclass
class Profile:
    """Everything measured under one network condition."""

    name: str
    latency: str | None
    seq: list[Seq] = field(default_factory=list)
    rand: list[Rand] = field(default_factory=list)
    meta: list[Meta] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)


def mib_per_sec(size_mib: int, t: Timed) -> float | None:
    return size_mib / t.secs if t.secs else None


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
    "rclone-off": "rclone mount, cache off",
    "rclone-full": "rclone mount, cache full",
    "memfs": "FUSE ceiling (memfs)",
}
CURL = "raw curl (one stream)"
SINGLE = "single stream, no read-ahead (1 MiB GETs in turn)"
LOCAL = "local disk"


def joined(*notes: str | None) -> str:
    """Notes for one table cell: on one line, without the table's `|`."""
    text = "; ".join(n for n in notes if n)
    return " ".join(text.split()).replace("|", "\\|")


def best_of(tries: list[Seq]) -> Seq:
    """Merges repeated runs of one reader: the best throughput (noise on a shared machine only
    ever slows a run down), the highest peak RSS, every distinct note."""

    def top(values):
        present = [v for v in values if v is not None]
        return max(present) if present else None

    notes = list(dict.fromkeys(t.note for t in tries if t.note))
    return Seq(
        tries[0].reader,
        top(t.cold for t in tries),
        top(t.warm for t in tries),
        top(t.rss for t in tries),
        joined(*notes),
    )


def measure_seq(sys_: Systems, s: Settings, content: Content, url: str) -> list[Seq]:
    curl = ["curl", "-sS", "--fail", "-o", "/dev/null", url]

    def by_curl() -> Seq:
        drop_caches()
        cold, warm = timed(curl, s.timeout), timed(curl, s.timeout)
        return Seq(CURL, mib_per_sec(s.size_mib, cold), mib_per_sec(s.size_mib, warm),
                   note=joined(cold.error, warm.error))  # fmt: skip

    def by_single_stream() -> Seq:
        drop_caches()
        single = ranged_single_stream(url, s.size_mib * MIB, MIB, s.timeout)
        return Seq(SINGLE, mib_per_sec(s.size_mib, single), note=single.error or "")

    def from_local_disk() -> Seq:
        drop_caches(servers_warm=False)
        cold, warm = dd_read(content.big, s), dd_read(content.big, s)
        return Seq(LOCAL, mib_per_sec(s.size_mib, cold), mib_per_sec(s.size_mib, warm),
                   note=joined(cold.error, warm.error))  # fmt: skip

    def work(mnt: Path, _proc) -> tuple[Timed, Timed]:
        return dd_read(mnt / BIG_NAME, s), dd_read(mnt / BIG_NAME, s)

    def on_mount(kind: str) -> Seq:
        result, rss, error = sys_.run(kind, work)
        row = Seq(LABELS[kind], rss=rss, note=error)
        if result is not None:
            cold, warm = result
            row.cold, row.warm = mib_per_sec(s.size_mib, cold), mib_per_sec(s.size_mib, warm)
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


def measure_meta(sys_: Systems, s: Settings, content: Content) -> list[Meta]:
    rows = []
    commands = {"ls -lR": ["ls", "-lR"], "find": ["find"]}
    for label, cmd in commands.items():
        if sys_.tag == "loopback":
            log(f"metadata {label}: local disk")
            drop_caches(servers_warm=False)
            cold = timed([*cmd, content.tree], s.timeout)
            warm = timed([*cmd, content.tree], s.timeout)
            rows.append(Meta(LOCAL, label, cold.secs, None, warm.secs, None, note=joined(cold.error, warm.error)))

        for kind in ("yetifs", "rclone-off"):

            def work(mnt: Path, _proc, kind=kind, cmd=cmd) -> tuple:
                before = sys_.requests(kind)
                cold = timed([*cmd, mnt / "tree"], s.timeout)
                middle = sys_.requests(kind)
                warm = timed([*cmd, mnt / "tree"], s.timeout)
                after = sys_.requests(kind)
                calls = (
                    (middle - before, after - middle) if before is not None else (None, None)
                )  # fmt: skip
                return cold, warm, calls

            log(f"metadata {label}: {LABELS[kind]}")
            result, rss, error = sys_.run(kind, work)
            row = Meta(LABELS[kind], label, rss=rss, note=error)
            if result is not None:
                cold, warm, (row.cold_calls, row.warm_calls) = result
                row.cold_secs, row.warm_secs = cold.secs, warm.secs
                row.note = joined(cold.error, warm.error)
            rows.append(row)
    return rows


def measure_writes(sys_: Systems, s: Settings, content: Content, api: Api) -> list[Write]:
    rows = []
    big = f"cp of a {s.size_mib} MiB file"
    untar = f"untar of {s.small_files} small files"
    log("writes: curl upload")
    drop_caches()
    up = timed(api.curl_upload_cmd(content.big, None), s.timeout)
    rows.append(Write("raw curl upload (multipart POST)", big, up.secs, mib_per_sec(s.size_mib, up), note=up.error or ""))

    log("writes: local disk")
    local = sys_.sup.workdir / "run" / f"{sys_.tag}-local-writes"
    local.mkdir(parents=True)
    drop_caches(servers_warm=False)
    cp = timed(["sh", "-c", f'cp "$1" "$2" && sync', "cp", content.big, local / "copy.bin"], s.timeout)
    rows.append(Write(f"{LOCAL} (cp, then sync)", big, cp.secs, mib_per_sec(s.size_mib, cp), note=cp.error or ""))
    tar = timed(["sh", "-c", 'tar -xf "$1" -C "$2" && sync', "tar", content.tarball, local], s.timeout)
    rows.append(Write(f"{LOCAL} (tar, then sync)", untar, tar.secs, note=tar.error or ""))
    shutil.rmtree(local)

    for kind in ("yetifs", "rclone-off"):

        def work(mnt: Path, proc) -> tuple:
            cp = timed(["cp", content.big, mnt / f"copy-{sys_.tag}.bin"], s.timeout)
            cp_rss = peak_rss_mib(proc)
            reset_peak_rss(proc)
            tar = timed(["tar", "-xf", content.tarball, "-C", mnt], s.timeout)
            tar_rss = peak_rss_mib(proc)
            # Untimed: what was written goes again, so the server's store (the emulator's blobs,
            # the WebDAV directory) does not grow by the big file each time.
            for entry in list(mnt.iterdir()):
                if entry.name.startswith("copy-") or entry.name == "small":
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            return cp, cp_rss, tar, tar_rss

        log(f"writes: {LABELS[kind]}")
        result, rss, error = sys_.run(kind, work)
        if result is None:
            rows.append(Write(LABELS[kind], big, note=error))
            rows.append(Write(LABELS[kind], untar, note=error))
            continue
        cp, cp_rss, tar, tar_rss = result
        rows.append(Write(LABELS[kind], big, cp.secs, mib_per_sec(s.size_mib, cp), cp_rss, cp.error or ""))
        rows.append(Write(LABELS[kind], untar, tar.secs, None, tar_rss, tar.error or ""))
    return rows


# ---------------------------------------------------------------------------------------------
# Verdicts and the report


@dataclass
class Check:
    """One target: what was measured, what it must reach, and whether it did."""

    name: str
    measured: str
    target: str
    passed: bool


def ratio_check(name: str, num: float | None, den: float | None, at_least: float, what: str, why: str) -> Check:
    target = f"≥ {at_least:g}x"
    if num is None or den is None or den == 0:
        return Check(name, f"not measured: {why or 'a figure is missing'}", target, False)
    ratio = num / den
    return Check(name, f"{ratio:.2f}x ({what})", target, ratio >= at_least)


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
    cp = find(p.writes, writer="yetifs", what=f"cp of a {s.size_mib} MiB file") or Write("", "")
    curl = find(p.writes, writer="raw curl upload (multipart POST)") or Write("", "")
    out.append(ratio_check(
        "`cp` into the mount vs raw curl upload", cp.mib_per_sec, curl.mib_per_sec, 0.85,
        f"yetifs {fmt(cp.mib_per_sec)} MiB/s, curl {fmt(curl.mib_per_sec)} MiB/s", cp.note or curl.note))  # fmt: skip
    limit = s.memory_cache_mib + 64
    target = f"≤ {limit} MiB (memory cache {s.memory_cache_mib} MiB + 64)"
    if y.rss is None:
        out.append(Check(f"peak RSS streaming {s.size_mib} MiB", f"not measured: {y.note or 'no figure'}", target, False))
    else:
        out.append(Check(f"peak RSS streaming {s.size_mib} MiB", f"{y.rss:.0f} MiB", target, y.rss <= limit))
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


def render_profile(p: Profile, s: Settings) -> list[str]:
    """The markdown of one profile: the verdicts first, then every figure behind them."""
    title = "Loopback" if p.latency is None else f"{p.latency} added to every request"
    out = [f"## {title}", ""]
    out += ["| check | measured | target | verdict |", "|---|---|---|---|"]
    for c in checks(p, s):
        out.append(f"| {c.name} | {joined(c.measured)} | {c.target} | {'PASS' if c.passed else 'FAIL'} |")
    curl = find(p.seq, reader=CURL)
    out += ["", f"### Sequential read of a {s.size_mib} MiB file (`dd bs=1M`, best of {s.repeat})", ""]
    out += ["| reader | cold MiB/s | warm MiB/s | cold vs curl | peak RSS MiB | note |", "|---|--:|--:|--:|--:|---|"]
    for r in p.seq:
        vs = f"{r.cold / curl.cold:.2f}x" if r.cold and curl and curl.cold else "—"
        out.append(f"| {r.reader} | {fmt(r.cold)} | {fmt(r.warm)} | {vs} | {fmt(r.rss)} | {joined(r.note)} |")
    out += ["", f"### Random reads (fio, {s.fio_jobs} jobs, psync, {s.fio_secs} s each)", ""]
    out += ["| reader | block | cold IOPS | cold p99 ms | warm IOPS | warm p99 ms | peak RSS MiB | note |",
            "|---|---|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in p.rand:
        out.append(
            f"| {r.reader} | {r.block} | {fmt(r.cold_iops)} | {fmt(r.cold_p99_ms, 2)} | "
            f"{fmt(r.warm_iops)} | {fmt(r.warm_p99_ms, 2)} | {fmt(r.rss)} | {joined(r.note)} |"
        )
    out += ["", f"### Metadata: {s.files:,} files in {s.folders:,} folders", ""]
    out += ["| reader | command | cold s | cold requests | warm s | warm requests | peak RSS MiB | note |",
            "|---|---|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in p.meta:
        out.append(
            f"| {r.reader} | `{r.command}` | {fmt(r.cold_secs, 2)} | {fmt(r.cold_calls)} | "
            f"{fmt(r.warm_secs, 2)} | {fmt(r.warm_calls)} | {fmt(r.rss)} | {joined(r.note)} |"
        )
    out += ["", "### Writes", ""]
    out += ["| writer | what | seconds | MiB/s | peak RSS MiB | note |", "|---|---|--:|--:|--:|---|"]
    for r in p.writes:
        out.append(f"| {r.writer} | {r.what} | {fmt(r.secs, 2)} | {fmt(r.mib_per_sec)} | {fmt(r.rss)} | {joined(r.note)} |")
    return out + [""]


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
        f"folders; {s.small_files:,} files of 512 B–8 KiB for untar. yetifs mounted with "
        f"`--memory-cache {s.memory_cache_mib}MiB --dir-ttl 3600`.",
        "",
        "## How to run",
        "",
        "`scripts/bench` (root; about 15 minutes) or `scripts/bench --quick` (a couple of minutes).",
        "It installs fio, curl, rclone and fuse3 from the distribution if missing, builds the release",
        "binaries, and runs everything below on loopback, then again with the emulator at",
        f"`--faults latency={s.latency}` (rclone gets the same delay per request from a small proxy",
        "in front of `rclone serve webdav`). Sizes can be changed with `BENCH_*` variables (see the",
        "script's header).",
        "",
        "- yetifs: `yetifs mount` over `yetifs serve --ranges correct` on 127.0.0.1.",
        "- raw curl: the file's `download_url` fetched by `curl` in one stream; the upload is a",
        "  `file/upload` multipart POST by `curl`.",
        "- single stream without read-ahead: 1 MiB ranged GETs one after another on one",
        "  connection, as a FUSE filesystem without prefetch would fetch.",
        "- rclone: `rclone mount :webdav:` over `rclone serve webdav` of the same bytes on",
        "  127.0.0.1, `--vfs-cache-mode off` and `full`, given yetifs's cache times (`--dir-cache-time",
        "  1h --attr-timeout 1h`). Writes use `off`, where `close` returns after the upload, as with",
        "  yetifs (in `full` mode the upload happens later).",
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
        "- Peak RSS: VmHWM of the daemon, reset (`clear_refs`) before each measurement.",
        "- Requests: API calls from the emulator's access log (downloads not counted); for rclone,",
        "  WebDAV requests counted by the delay proxy (so only in the latency run).",
        "",
    ]
    for p in profiles:
        out += render_profile(p, s)
    text = "\n".join(out).replace(str(workdir), "$WORK").replace(str(REPO), ".")
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(text)
    log(f"wrote {s.out}")


# ---------------------------------------------------------------------------------------------
# The run


def run(s: Settings, sup: Supervisor) -> list[Profile]:
    work = sup.workdir
    # The content (big file and trees), one mount's caches (up to twice the big file) and one
    # copy being written, plus room for everything else.
    need = 4 * s.size_mib * MIB + 1024 * MIB
    free = shutil.disk_usage(work).free
    if free < need:
        raise BenchError(
            f"only {free / MIB / 1024:.1f} GiB free under {work}; the run needs "
            f"{need / MIB / 1024:.1f} GiB (4 x {s.size_mib} MiB + 1 GiB): free some space, "
            "or point BENCH_DIR at a larger disk, or lower BENCH_SIZE_MIB"
        )
    log(f"making content in {work}")
    content = make_content(work / "content", s)
    webdav_root = work / "webdav"
    webdav_root.mkdir()
    os.link(content.big, webdav_root / BIG_NAME)
    subprocess.run(["cp", "-al", str(content.tree), str(webdav_root / "tree")], check=True)

    emu_data = work / "emulator"
    SERVER_DIRS[:] = [emu_data, webdav_root]
    emu = start_emulator(sup, emu_data, None, "loopback-serve")
    api = Api(emu.api_url, emu.key1, emu.key2)
    log("uploading the content to the emulator")
    up = timed(api.curl_upload_cmd(content.big, None), s.timeout)
    if up.error:
        raise BenchError(f"uploading {BIG_NAME}: {up.error}")
    populate(api, content)

    webdav_port = free_port()
    webdav = sup.spawn("webdav", [
        "rclone", "serve", "webdav", webdav_root, "--addr", f"127.0.0.1:{webdav_port}",
        "--config", "/dev/null",
    ])  # fmt: skip
    wait_port(webdav_port, webdav, "rclone serve webdav")

    profiles = []
    plan = [("loopback", None)] + ([] if s.skip_latency else [("latency", s.latency)])
    for tag, latency in plan:
        proxy = None
        count_file = None
        webdav_url = f"http://127.0.0.1:{webdav_port}/"
        if latency is not None:
            sup.stop(emu.proc)
            emu = start_emulator(sup, emu_data, f"latency={latency}", f"{tag}-serve")
            api = Api(emu.api_url, emu.key1, emu.key2)
            proxy_port = free_port()
            count_file = work / "logs" / "webdav-requests"
            proxy = sup.spawn("delay-proxy", [
                sys.executable, Path(__file__).resolve(), "--delay-proxy", proxy_port,
                webdav_port, parse_duration(latency), count_file,
            ])  # fmt: skip
            wait_port(proxy_port, proxy, "the delay proxy")
            webdav_url = f"http://127.0.0.1:{proxy_port}/"
        log(f"--- {tag} ---")
        url = api.download_url(api.root_file_id(BIG_NAME))
        systems = Systems(sup, s, emu, webdav_url, tag, count_file)
        profile = Profile(tag, latency)
        profile.seq = measure_seq(systems, s, content, url)
        profile.rand = measure_rand(systems, s, content)
        profile.meta = measure_meta(systems, s, content)
        profile.writes = measure_writes(systems, s, content, api)
        profiles.append(profile)
        if proxy is not None:
            sup.stop(proxy)
        for line in render_profile(profile, s)[:12]:
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
