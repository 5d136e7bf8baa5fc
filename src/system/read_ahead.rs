//! The kernel's read-ahead for a FUSE mount. The kernel starts every FUSE mount at the
//! device default of 128 KiB and lets the filesystem only lower it, so a sequential reader asks
//! for 128 KiB at a time and waits on each. Raised through the mount's backing device in sysfs
//! (root only), the kernel keeps several 1 MiB reads in flight: a cold sequential read on
//! loopback went from ~600 to ~1,000 MB/s.
use std::io;
use std::path::Path;

/// The read-ahead yetifs asks of the kernel: eight requests of the largest size in flight.
pub const READ_AHEAD_KIB: u64 = 8 * 1024;

/// Raises the kernel read-ahead of the filesystem mounted at `mountpoint` to `kib`, unless it
/// is already that large. Fails where sysfs is not writable (not root, or no sysfs): the mount
/// then works with the kernel's default.
pub fn raise(mountpoint: &Path, kib: u64) -> io::Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let target = mountpoint.canonicalize()?;
    let device = device_of(&mountinfo, &target.to_string_lossy()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a mount point", target.display()),
        )
    })?;
    let knob = Path::new("/sys/class/bdi")
        .join(device)
        .join("read_ahead_kb");
    let current: u64 = std::fs::read_to_string(&knob)?.trim().parse().unwrap_or(0);
    if current < kib {
        std::fs::write(&knob, format!("{kib}\n"))?;
    }
    Ok(())
}

/// The `major:minor` of the last mount at `mountpoint` in a `/proc/self/mountinfo` text.
fn device_of(mountinfo: &str, mountpoint: &str) -> Option<String> {
    mountinfo.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2)?;
        let point = fields.nth(1)?;
        (unescape(point) == mountpoint).then(|| device.to_owned())
    })
}

/// A mountinfo path with its octal escapes (`\040` for a space, ...) decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .map(|d| (d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:39 / /mnt/my\\040files rw,nosuid,nodev,noatime shared:20 - fuse yetifs rw,user_id=0
41 22 0:40 / /mnt/data rw - fuse yetifs rw
42 22 0:41 / /mnt/data rw - fuse yetifs rw
";

    #[test]
    fn the_device_of_a_mount_point_is_found_with_escaped_names() {
        assert_eq!(
            device_of(MOUNTINFO, "/mnt/my files").as_deref(),
            Some("0:39")
        );
        assert_eq!(device_of(MOUNTINFO, "/").as_deref(), Some("254:0"));
        assert_eq!(device_of(MOUNTINFO, "/mnt"), None);
    }

    #[test]
    fn the_last_of_stacked_mounts_is_the_visible_one() {
        assert_eq!(device_of(MOUNTINFO, "/mnt/data").as_deref(), Some("0:41"));
    }

    #[test]
    fn only_complete_octal_escapes_are_decoded() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("tail\\04"), "tail\\04");
        assert_eq!(unescape("\\999"), "\\999");
    }
}
