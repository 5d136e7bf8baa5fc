//! POSIX details on a real mount: names past 255 bytes are too long, not missing.
mod common;

use std::fs::{self, File};

use common::mount::{Mount, Server};
use yetifs::emulator::{Profile, RangeMode};

fn mount(server: &Server) -> Mount {
    Mount::start(server, &["--dir-ttl", "0"])
}

fn errno_of(result: std::io::Result<impl std::fmt::Debug>) -> Option<i32> {
    result.unwrap_err().raw_os_error()
}

#[test]
fn a_name_longer_than_255_bytes_is_too_long_not_missing() {
    let server = Server::start(Profile::V4, RangeMode::Naive);
    let m = mount(&server);
    let root = m.path();
    fs::write(root.join("short"), "x").unwrap();
    for len in [256, 1000] {
        let long = root.join("n".repeat(len));
        let too_long = Some(libc::ENAMETOOLONG);
        assert_eq!(
            errno_of(fs::metadata(&long)),
            too_long,
            "stat of {len} bytes"
        );
        assert_eq!(errno_of(File::create(&long)), too_long, "create");
        assert_eq!(errno_of(fs::create_dir(&long)), too_long, "mkdir");
        assert_eq!(errno_of(fs::rename(root.join("short"), &long)), too_long);
        assert_eq!(
            errno_of(std::os::unix::fs::symlink("short", &long)),
            too_long
        );
    }
    assert_eq!(
        errno_of(fs::metadata(root.join("n".repeat(255)))),
        Some(libc::ENOENT)
    );
    assert!(m.unmount().success());
}
