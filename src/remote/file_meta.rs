//! The POSIX metadata a file carries on the server, in its `fileType`.
//!
//! The API has one free field per file: `fileType`, up to 140 characters, set with
//! `file/edit`, returned by every `folder/listing` and `file/info`, kept by copy, move and
//! rename (NOTES.md). yetifs stores there what a listing must show and the server cannot keep
//! otherwise: the kind of file (regular, empty, symbolic link), its modification time, its
//! permission bits and, once `chown` set them, its owner and group. Every mount of the account
//! then shows the same attributes, and a cold `ls -l` needs no `file/info` for the upload date.
//!
//! # Encoding, version 1
//! A MIME type with parameters, so that the host's web page shows something sensible:
//!
//! ```text
//! application/octet-stream; mtime=1700000000.123456789; mode=0644; yetifs=1
//! inode/x-empty; mtime=1700000000; mode=0600; uid=1000; gid=1000; yetifs=1
//! inode/symlink; mtime=1700000000.5; mode=0777; yetifs=1
//! ```
//!
//! - The type names the kind: `application/octet-stream` (what uploads get anyway) a regular
//!   file, `inode/x-empty` an empty file (the server refuses empty uploads, so it holds one
//!   byte that no mount shows), `inode/symlink` a link whose content is its target.
//! - `mtime` is seconds since the epoch with up to nine decimals; `mode` the permission bits in
//!   octal; `uid`/`gid` decimal, present only once set. Every field is optional.
//! - `yetifs=1` comes **last**: a value cut short (by hand, or by a host with a shorter field)
//!   loses it and reads as a plain file rather than as wrong metadata.
//!
//! The longest value, every field at its maximum (an mtime in the year 2514), is 106
//! characters: 34 to spare.
//!
//! # Lenient reading
//! Anything that is not exactly a version-1 value — another client's MIME type, a future
//! version, a cut or garbled value, an unknown kind, a field repeated or out of range — is a
//! plain file with nothing carried. Reading never fails: a bad value costs attributes, never
//! access to the file.
//!
//! rclone (`--links`) stores a symlink as `NAME.rclonelink` holding the target; such a file with
//! nothing of ours in it is shown as the link `NAME`.
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The encoding version this build writes and understands.
pub const VERSION: u32 = 1;
/// The suffix rclone gives the files that stand for symlinks.
pub const RCLONE_LINK_SUFFIX: &str = ".rclonelink";
/// The longest symlink target a link may have (`PATH_MAX` less the final NUL).
pub const MAX_TARGET: usize = 4095;

const REGULAR_TYPE: &str = "application/octet-stream";
const EMPTY_TYPE: &str = "inode/x-empty";
const SYMLINK_TYPE: &str = "inode/symlink";
const MARKER: &str = "yetifs";

/// What a file is, as far as POSIX is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// An ordinary file: its content is what the server holds.
    #[default]
    Regular,
    /// An empty file, stored as one byte nobody is shown.
    Empty,
    /// A symbolic link; the server holds its target.
    Symlink,
}

/// The attributes a file carries on the server; `None` fields were never set there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// Regular, empty or symlink.
    pub kind: FileKind,
    /// The modification time set or written through a mount.
    pub mtime: Option<SystemTime>,
    /// Permission bits (`0o7777` at most).
    pub mode: Option<u32>,
    /// Owner set with `chown`.
    pub uid: Option<u32>,
    /// Group set with `chown`.
    pub gid: Option<u32>,
}

impl FileMeta {
    /// The metadata in `file_type`, or `None` when it holds none of ours (see the module
    /// documentation for what is accepted).
    pub fn parse(file_type: &str) -> Option<FileMeta> {
        let mut parts = file_type.split(';').map(str::trim);
        let kind = match parts.next()?.to_ascii_lowercase().as_str() {
            REGULAR_TYPE => FileKind::Regular,
            EMPTY_TYPE => FileKind::Empty,
            SYMLINK_TYPE => FileKind::Symlink,
            _ => return None,
        };
        let mut meta = FileMeta {
            kind,
            ..FileMeta::default()
        };
        let mut versioned = false;
        for part in parts {
            if versioned {
                return None;
            }
            let (key, value) = part.split_once('=')?;
            match key.trim() {
                "mtime" if meta.mtime.is_none() => meta.mtime = Some(parse_time(value.trim())?),
                "mode" if meta.mode.is_none() => meta.mode = Some(parse_mode(value.trim())?),
                "uid" if meta.uid.is_none() => meta.uid = Some(value.trim().parse().ok()?),
                "gid" if meta.gid.is_none() => meta.gid = Some(value.trim().parse().ok()?),
                MARKER if value.trim() == VERSION.to_string() => versioned = true,
                _ => return None,
            }
        }
        versioned.then_some(meta)
    }

    /// The `fileType` value that carries this metadata.
    pub fn encode(&self) -> String {
        let mut out = String::from(match self.kind {
            FileKind::Regular => REGULAR_TYPE,
            FileKind::Empty => EMPTY_TYPE,
            FileKind::Symlink => SYMLINK_TYPE,
        });
        if let Some(mtime) = self.mtime {
            let since = mtime.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
            let _ = write!(out, "; mtime={}", since.as_secs());
            if since.subsec_nanos() != 0 {
                let fraction = format!("{:09}", since.subsec_nanos());
                let _ = write!(out, ".{}", fraction.trim_end_matches('0'));
            }
        }
        if let Some(mode) = self.mode {
            let _ = write!(out, "; mode={:04o}", mode & 0o7777);
        }
        if let Some(uid) = self.uid {
            let _ = write!(out, "; uid={uid}");
        }
        if let Some(gid) = self.gid {
            let _ = write!(out, "; gid={gid}");
        }
        let _ = write!(out, "; {MARKER}={VERSION}");
        out
    }

    /// What a file carries, from its server name and `fileType`: its metadata if it holds
    /// ours, and whether it is an rclone link (a symlink shown without `RCLONE_LINK_SUFFIX`):
    /// a file of that name that carries nothing, or that we marked as a link.
    pub fn of_file(name: &str, file_type: &str) -> (Option<FileMeta>, bool) {
        let rclone_name =
            name.len() > RCLONE_LINK_SUFFIX.len() && name.ends_with(RCLONE_LINK_SUFFIX);
        let meta = FileMeta::parse(file_type);
        let rclone_link = rclone_name && meta.is_none_or(|m| m.kind == FileKind::Symlink);
        (meta, rclone_link)
    }
}

/// `SECONDS[.FRACTION]`, the fraction of one to nine digits.
fn parse_time(value: &str) -> Option<SystemTime> {
    let (secs, fraction) = match value.split_once('.') {
        Some((secs, fraction)) => (secs, Some(fraction)),
        None => (value, None),
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos = match fraction {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: u32 = f.parse().ok()?;
            digits * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Permission bits in octal, at most `0o7777`.
fn parse_mode(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 6 || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(value, 8).ok().filter(|&m| m <= 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn a_regular_file_reads_as_a_mime_type_with_parameters() {
        let meta = FileMeta {
            kind: FileKind::Regular,
            mtime: Some(at(1_700_000_000, 123_456_789)),
            mode: Some(0o644),
            uid: None,
            gid: None,
        };
        let encoded = meta.encode();
        assert_eq!(
            encoded,
            "application/octet-stream; mtime=1700000000.123456789; mode=0644; yetifs=1"
        );
        assert_eq!(FileMeta::parse(&encoded), Some(meta));
    }

    #[test]
    fn empty_files_and_symlinks_have_types_of_their_own() {
        let empty = FileMeta {
            kind: FileKind::Empty,
            mtime: Some(at(5, 500_000_000)),
            mode: Some(0o600),
            uid: Some(1000),
            gid: Some(100),
        };
        assert_eq!(
            empty.encode(),
            "inode/x-empty; mtime=5.5; mode=0600; uid=1000; gid=100; yetifs=1"
        );
        let link = FileMeta {
            kind: FileKind::Symlink,
            ..FileMeta::default()
        };
        assert_eq!(link.encode(), "inode/symlink; yetifs=1");
        for meta in [empty, link] {
            assert_eq!(FileMeta::parse(&meta.encode()), Some(meta));
        }
    }

    #[test]
    fn the_longest_value_leaves_room_in_the_servers_140_characters() {
        let meta = FileMeta {
            kind: FileKind::Regular,
            mtime: Some(at(u64::from(u32::MAX) * 4, 999_999_999)),
            mode: Some(0o7777),
            uid: Some(u32::MAX),
            gid: Some(u32::MAX),
        };
        let encoded = meta.encode();
        assert!(encoded.len() <= 106, "{} chars: {encoded}", encoded.len());
        assert_eq!(FileMeta::parse(&encoded), Some(meta));
    }

    #[test]
    fn the_value_the_real_server_was_probed_with_is_not_ours_since_its_version_is_not_last() {
        let probed = "inode/symlink; yetifs=1; mtime=1700000000.123456789; mode=0755";
        assert_eq!(FileMeta::parse(probed), None);
    }

    #[test]
    fn other_clients_values_are_plain_files() {
        for other in [
            "",
            "application/octet-stream",
            "image/png",
            "inode/symlink",
            "text/plain; charset=utf-8",
            "application/octet-stream; yetifs=2",
            "application/octet-stream; mtime=5; yetifs=12",
        ] {
            assert_eq!(FileMeta::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_value_cut_short_is_a_plain_file() {
        let full = FileMeta {
            kind: FileKind::Symlink,
            mtime: Some(at(1_700_000_000, 1)),
            mode: Some(0o755),
            uid: Some(1),
            gid: Some(2),
        }
        .encode();
        for cut in 0..full.len() {
            let meta = FileMeta::parse(&full[..cut]);
            assert_eq!(meta, None, "{:?}", &full[..cut]);
        }
    }

    #[test]
    fn garbage_in_a_field_is_a_plain_file() {
        for bad in [
            "application/octet-stream; mtime=abc; yetifs=1",
            "application/octet-stream; mtime=-5; yetifs=1",
            "application/octet-stream; mtime=5.1234567890; yetifs=1",
            "application/octet-stream; mtime=5.; yetifs=1",
            "application/octet-stream; mode=0999; yetifs=1",
            "application/octet-stream; mode=17777; yetifs=1",
            "application/octet-stream; uid=-1; yetifs=1",
            "application/octet-stream; uid=4294967296; yetifs=1",
            "application/octet-stream; mode=0644; mode=0600; yetifs=1",
            "application/octet-stream; colour=blue; yetifs=1",
            "application/octet-stream; yetifs=1; mode=0644",
            "application/octet-stream; mode; yetifs=1",
            "application/x-tar; yetifs=1",
        ] {
            assert_eq!(FileMeta::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reading_forgives_case_and_spacing() {
        let meta = FileMeta::parse("Inode/Symlink ;mode = 0777;  yetifs = 1 ");
        assert_eq!(
            meta,
            Some(FileMeta {
                kind: FileKind::Symlink,
                mode: Some(0o777),
                ..FileMeta::default()
            })
        );
    }

    #[test]
    fn rclone_links_are_symlinks_unless_the_file_says_otherwise() {
        let rclone = FileMeta::of_file("docs.rclonelink", "application/octet-stream");
        assert_eq!(rclone, (None, true));
        let ours = FileMeta {
            kind: FileKind::Symlink,
            mode: Some(0o777),
            ..FileMeta::default()
        };
        let marked = FileMeta::of_file("docs.rclonelink", &ours.encode());
        assert_eq!(marked, (Some(ours), true));
        let regular = FileMeta::default();
        let plain = FileMeta::of_file("notes.rclonelink", &regular.encode());
        assert_eq!(plain, (Some(regular), false));
        assert_eq!(FileMeta::of_file(".rclonelink", ""), (None, false));
        assert_eq!(FileMeta::of_file("notes.txt", ""), (None, false));
    }

    proptest! {
        #[test]
        fn every_value_written_reads_back(
            kind in 0..3u8,
            mtime in proptest::option::of((0u64..1 << 40, 0u32..1_000_000_000)),
            mode in proptest::option::of(0u32..=0o7777),
            uid in proptest::option::of(any::<u32>()),
            gid in proptest::option::of(any::<u32>()),
        ) {
            let meta = FileMeta {
                kind: [FileKind::Regular, FileKind::Empty, FileKind::Symlink][kind as usize],
                mtime: mtime.map(|(s, n)| at(s, n)),
                mode,
                uid,
                gid,
            };
            let encoded = meta.encode();
            prop_assert!(encoded.chars().count() <= 140);
            prop_assert_eq!(FileMeta::parse(&encoded), Some(meta));
        }

        #[test]
        fn no_string_makes_reading_panic(value in ".{0,200}") {
            let _ = FileMeta::parse(&value);
            let _ = FileMeta::of_file(&value, &value);
        }
    }
}
