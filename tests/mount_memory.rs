//! A real FUSE mount of an in-memory account, used through the kernel with `std::fs` and with
//! ordinary tools (`ls`, `find`, `sha256sum`). Needs `/dev/fuse` and the right to mount (root).
use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use yetifs::fs::{Core, FsOptions, Owner};
use yetifs::fuse::{mount, MountHandle, MountOptions};
use yetifs::remote::memory::MemoryRemote;

const BIG_LEN: usize = 3 * 1024 * 1024 + 17;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

struct Mounted {
    // Field order matters: unmount before the runtime and the directory go.
    handle: Option<MountHandle>,
    _runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    remote: Arc<MemoryRemote>,
}

impl Mounted {
    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Unmounts; returns the mountpoint directory (removed when dropped).
    fn unmount(mut self) -> tempfile::TempDir {
        if let Some(mut handle) = self.handle.take() {
            handle.unmount().unwrap();
        }
        self.dir
    }
}

/// Mounts an account holding:
/// `hello.txt`, `big.bin`, `docs/readme.md`, `docs/AC/DC.txt` (a `/` in the name),
/// two files named `same.txt`, and a file in the trash.
fn mount_sample() -> Mounted {
    let remote = Arc::new(MemoryRemote::new());
    remote.add_file(None, "hello.txt", "hello, world\n");
    remote.add_file(None, "big.bin", pattern(BIG_LEN));
    let docs = remote.add_folder(None, "docs");
    remote.add_file(Some(docs), "readme.md", "# docs\n");
    let dated = remote.add_file(Some(docs), "AC/DC.txt", "rock\n");
    remote.set_uploaded(dated, Some(1_500_000_000)).unwrap();
    remote.add_file(None, "same.txt", "first\n");
    remote.add_file(None, "same.txt", "second\n");
    let trashed = remote.add_file(None, "trashed.txt", "gone\n");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(yetifs::remote::Remote::delete_file(&*remote, trashed))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let owner = Owner { uid: 0, gid: 0 };
    let core = Arc::new(Core::new(Arc::clone(&remote), FsOptions::new(owner)).unwrap());
    let handle = {
        let _entered = runtime.enter();
        mount(core, dir.path(), &MountOptions::default()).unwrap()
    };
    Mounted {
        handle: Some(handle),
        _runtime: runtime,
        dir,
        remote,
    }
}

fn is_mounted(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let path = path.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(path.as_ref()))
}

fn run(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn directories_list_like_local_ones() {
    let m = mount_sample();
    let root = m.path();
    let mut names: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["big.bin", "docs", "hello.txt", "same.txt", "same~6.txt"]
    );
    let mut docs: Vec<String> = fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    docs.sort();
    assert_eq!(docs, ["AC∕DC.txt", "readme.md"]);
    let entry_kinds: Vec<bool> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_type().unwrap().is_dir())
        .collect();
    assert_eq!(entry_kinds.iter().filter(|d| **d).count(), 1);
    m.unmount();
}

#[test]
fn metadata_shows_sizes_modes_and_upload_times() {
    let m = mount_sample();
    let root = m.path();
    let big = fs::metadata(root.join("big.bin")).unwrap();
    assert!(big.is_file());
    assert_eq!(big.len(), BIG_LEN as u64);
    assert_eq!(big.permissions().mode() & 0o7777, 0o644);
    let docs = fs::metadata(root.join("docs")).unwrap();
    assert!(docs.is_dir());
    assert_eq!(docs.permissions().mode() & 0o7777, 0o755);
    let dated = fs::metadata(root.join("docs/AC∕DC.txt")).unwrap();
    assert_eq!(
        dated.modified().unwrap(),
        UNIX_EPOCH + Duration::from_secs(1_500_000_000)
    );
    assert_eq!((dated.uid(), dated.gid()), (0, 0));
    assert!(fs::metadata(root.join("trashed.txt")).is_err());
    m.unmount();
}

#[test]
fn files_read_whole_and_from_any_offset() {
    let m = mount_sample();
    let root = m.path();
    assert_eq!(
        fs::read_to_string(root.join("hello.txt")).unwrap(),
        "hello, world\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("same~6.txt")).unwrap(),
        "second\n"
    );
    let expected = pattern(BIG_LEN);
    assert_eq!(fs::read(root.join("big.bin")).unwrap(), expected);
    let mut file = fs::File::open(root.join("big.bin")).unwrap();
    for offset in [BIG_LEN - 5, 1, 2 * 1024 * 1024 - 3, 0] {
        file.seek(SeekFrom::Start(offset as u64)).unwrap();
        let mut buf = vec![0u8; 10_000];
        let n = file.read(&mut buf).unwrap();
        assert!(n > 0);
        assert_eq!(buf[..n], expected[offset..offset + n], "offset {offset}");
    }
    drop(file);
    m.unmount();
}

#[test]
fn tools_walk_and_checksum_the_mount() {
    let m = mount_sample();
    let root = m.path();
    let listing = run("ls", &["-lR"], &root);
    for name in [
        "big.bin",
        "hello.txt",
        "readme.md",
        "AC∕DC.txt",
        "same~6.txt",
    ] {
        assert!(listing.contains(name), "ls -lR lacks {name}:\n{listing}");
    }
    let found = run("find", &[".", "-type", "f"], &root);
    let mut found: Vec<&str> = found.lines().collect();
    found.sort();
    assert_eq!(
        found,
        [
            "./big.bin",
            "./docs/AC∕DC.txt",
            "./docs/readme.md",
            "./hello.txt",
            "./same.txt",
            "./same~6.txt"
        ]
    );
    let local = tempfile::tempdir().unwrap();
    fs::write(local.path().join("big.bin"), pattern(BIG_LEN)).unwrap();
    let sum = |dir: &Path| {
        run("sha256sum", &["big.bin"], dir)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sum(&root), sum(local.path()));
    m.unmount();
}

/// `getxattr(2)` of `name` on `path`: the value, or the errno.
fn getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for its length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(_) => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
    }
}

#[test]
fn extended_attributes_are_readable_through_the_kernel() {
    let m = mount_sample();
    let file = m.path().join("hello.txt");
    assert_eq!(getxattr(&file, "user.yetifs.id"), Ok(b"1".to_vec()));
    assert_eq!(getxattr(&file, "user.yetifs.nothing"), Err(libc::ENODATA));
    // What `ls -l` asks of every file is "not supported", which it remembers per filesystem.
    assert_eq!(getxattr(&file, "security.selinux"), Err(libc::EOPNOTSUPP));
    assert_eq!(
        getxattr(&file, "system.posix_acl_access"),
        Err(libc::EOPNOTSUPP)
    );
    assert_eq!(
        getxattr(&m.path(), "security.selinux"),
        Err(libc::EOPNOTSUPP)
    );
    m.unmount();
}

#[test]
fn the_kernel_keeps_several_reads_in_flight_for_a_sequential_reader() {
    let m = mount_sample();
    let dev = fs::metadata(m.path()).unwrap().dev();
    let knob = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    let kib: u64 = fs::read_to_string(knob).unwrap().trim().parse().unwrap();
    assert_eq!(kib, yetifs::system::read_ahead::READ_AHEAD_KIB);
    m.unmount();
}

#[test]
fn unmounting_leaves_an_empty_directory() {
    let m = mount_sample();
    let root = m.path();
    fs::read(root.join("hello.txt")).unwrap();
    assert!(m.remote.calls().total() > 0);
    assert!(is_mounted(&root));
    let dir = m.unmount();
    assert!(!is_mounted(&root));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unmounting_a_busy_mount_fails_until_its_files_are_closed() {
    let mut m = mount_sample();
    let file = fs::File::open(m.path().join("hello.txt")).unwrap();
    let mut handle = m.handle.take().unwrap();
    let busy = handle.unmount().unwrap_err();
    assert!(busy.to_string().contains("busy"), "{busy}");
    assert!(is_mounted(&m.path()));
    drop(file);
    handle.unmount().unwrap();
    assert!(!is_mounted(&m.path()));
}
