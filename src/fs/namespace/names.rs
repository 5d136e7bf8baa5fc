//! How server names become names in a directory. The server allows what a POSIX directory
//! cannot hold (`/`, NUL, `.`/`..`, empty names, names over 255 bytes, two items of one name),
//! so every folder listing is turned into a set of distinct, valid names by pure rules:
//!
//! 0. rclone links: a file `NAME.rclonelink` that stands for a symlink (see
//!    `remote::file_meta`) goes by `NAME`; the rules below apply to that name.
//! 1. Escaping: `/` is shown as `∕` (U+2215 DIVISION SLASH) and NUL as `␀` (U+2400). The
//!    reverse (`∕` → `/`) is what the write side sends to the server for a name a user typed.
//!    A server name that already holds a literal `∕` shows the same as its `/` twin; rule 3
//!    then keeps the two apart.
//! 2. Invalid names get the item id: an empty name becomes `~ID`, `.` and `..` become `.~ID`
//!    and `..~ID`, a name over 255 bytes is cut (at a character boundary, keeping a file's
//!    extension when it fits) so that `stem~ID.ext` fits.
//! 3. Duplicates (after escaping): the lowest id keeps the name, folders before files on equal
//!    ids; the others are shown as `stem~ID.ext` (files; the extension is what follows the last
//!    `.` that is not the first character) or `name~ID` (folders). If that too is taken,
//!    `~ID` is added again until the name is free.
//!
//! Items are always resolved through the names these rules produce, never by undoing them, so
//! every item stays reachable whatever its server name.

use crate::remote::file_meta::RCLONE_LINK_SUFFIX;
use crate::remote::{FileEntry, FileMeta};

/// What `/` in a server name is shown as.
pub const SLASH_ESCAPE: char = '\u{2215}';
/// What NUL in a server name is shown as.
pub const NUL_ESCAPE: char = '\u{2400}';
/// The longest name a directory entry may have, in bytes.
pub const NAME_MAX: usize = 255;

/// Whether an item is a folder or a file; folders win ties in duplicate resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    /// A folder.
    Folder,
    /// A file.
    File,
}

/// One item of a folder listing, as the naming rules need it.
#[derive(Clone, Copy, Debug)]
pub struct NameRequest<'a> {
    /// Folder or file.
    pub kind: ItemKind,
    /// The server id (unique per kind).
    pub id: u64,
    /// The server's name.
    pub name: &'a str,
}

/// Rule 1: the server name with `/` and NUL replaced by their visible stand-ins.
pub fn escape(server_name: &str) -> String {
    server_name
        .chars()
        .map(|c| match c {
            '/' => SLASH_ESCAPE,
            '\0' => NUL_ESCAPE,
            other => other,
        })
        .collect()
}

/// The server name for a name typed by a user: the stand-in for `/` becomes `/` again.
pub fn unescape(shown: &str) -> String {
    shown.replace(SLASH_ESCAPE, "/")
}

/// The name an rclone link (`NAME.rclonelink`, see `remote::file_meta`) is shown under, before
/// the other rules; `None` for any other file.
pub fn link_stem(file: &FileEntry) -> Option<&str> {
    let (_, rclone_link) = FileMeta::of_file(&file.name, &file.file_type);
    rclone_link
        .then(|| file.name.strip_suffix(RCLONE_LINK_SUFFIX))
        .flatten()
}

/// Names starting with this are yetifs's own: folders deleted on servers that would bring them
/// back are renamed to it first, and listings never show it. Users cannot create such names.
pub const RESERVED_PREFIX: &str = ".yetifs-deleted-";

/// Why a name typed by a user cannot be stored on the server as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unstorable {
    /// Longer than `NAME_MAX` bytes.
    TooLong,
    /// Has characters outside the Basic Multilingual Plane, which servers store as `?`.
    OutsideBmp,
    /// The server would change it: surrounding white space is trimmed, `<...>` tags are
    /// stripped from every request parameter.
    Altered,
    /// Starts with `RESERVED_PREFIX`.
    Reserved,
}

/// The server name for the name `shown` a user asked for, if the server stores it unchanged
/// (once the name fixes after an upload are done): never silently a different name.
pub fn storable(shown: &str) -> Result<String, Unstorable> {
    if shown.len() > NAME_MAX {
        return Err(Unstorable::TooLong);
    }
    if shown.chars().any(|c| u32::from(c) > 0xFFFF) {
        return Err(Unstorable::OutsideBmp);
    }
    if shown.starts_with(RESERVED_PREFIX) {
        return Err(Unstorable::Reserved);
    }
    let name = unescape(shown);
    let trimmed = name.trim();
    let tagged = name
        .find('<')
        .is_some_and(|open| name[open..].contains('>'));
    if trimmed != name || trimmed.is_empty() || tagged {
        return Err(Unstorable::Altered);
    }
    Ok(name)
}

/// Splits a file name into stem and extension (with its dot); a leading dot is not one.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `name` with `~ID` added before a file's extension (after a folder's name), cut to fit.
fn with_id(kind: ItemKind, name: &str, id: u64) -> String {
    let tag = format!("~{id}");
    let (stem, ext) = match kind {
        ItemKind::File => split_extension(name),
        ItemKind::Folder => (name, ""),
    };
    // Keep the extension only if it leaves room for at least one stem byte and the tag.
    let (stem, ext) = if ext.len() + tag.len() < NAME_MAX {
        (stem, ext)
    } else {
        (name, "")
    };
    let room = NAME_MAX.saturating_sub(tag.len() + ext.len());
    format!("{}{tag}{ext}", cut(stem, room))
}

/// Rules 1 and 2: the name an item asks for before duplicates are considered.
pub fn preferred(kind: ItemKind, id: u64, server_name: &str) -> String {
    let shown = escape(server_name);
    match shown.as_str() {
        "" | "." | ".." => format!("{shown}~{id}"),
        _ if shown.len() > NAME_MAX => with_id(kind, &shown, id),
        _ => shown,
    }
}

/// Rules 1–3 over one whole listing: the shown name of each item, in the order given.
pub fn assign(items: &[NameRequest<'_>]) -> Vec<String> {
    let preferred: Vec<String> = items
        .iter()
        .map(|item| preferred(item.kind, item.id, item.name))
        .collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].id, items[i].kind));
    let mut taken = std::collections::HashSet::new();
    let mut shown: Vec<Option<String>> = vec![None; items.len()];
    let mut losers = Vec::new();
    for &i in &order {
        if taken.insert(preferred[i].clone()) {
            shown[i] = Some(preferred[i].clone());
        } else {
            losers.push(i);
        }
    }
    for i in losers {
        let mut name = with_id(items[i].kind, &preferred[i], items[i].id);
        while !taken.insert(name.clone()) {
            name = with_id(items[i].kind, &name, items[i].id);
        }
        shown[i] = Some(name);
    }
    shown.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u64, name: &str) -> NameRequest<'_> {
        NameRequest {
            kind: ItemKind::File,
            id,
            name,
        }
    }

    fn folder(id: u64, name: &str) -> NameRequest<'_> {
        NameRequest {
            kind: ItemKind::Folder,
            id,
            name,
        }
    }

    #[test]
    fn names_the_server_keeps_are_storable_and_slash_stand_ins_become_slashes() {
        for name in [
            "a.txt",
            ".bashrc",
            "it's \"quoted\"",
            "ünïcødé ✓",
            "a (2).txt",
            "x>y",
        ] {
            assert_eq!(storable(name).as_deref(), Ok(name));
        }
        assert_eq!(storable("AC∕DC").as_deref(), Ok("AC/DC"));
    }

    #[test]
    fn names_the_server_would_change_are_refused_with_their_reason() {
        assert_eq!(storable("rocket 🚀"), Err(Unstorable::OutsideBmp));
        assert_eq!(storable(&"a".repeat(256)), Err(Unstorable::TooLong));
        assert_eq!(storable(" lead"), Err(Unstorable::Altered));
        assert_eq!(storable("trail\n"), Err(Unstorable::Altered));
        assert_eq!(storable("a<b>c"), Err(Unstorable::Altered));
        assert_eq!(storable(".yetifs-deleted-4"), Err(Unstorable::Reserved));
    }

    #[test]
    fn plain_distinct_names_are_shown_unchanged() {
        let names = assign(&[file(3, "a.txt"), folder(1, "docs"), file(2, "b")]);
        assert_eq!(names, ["a.txt", "docs", "b"]);
    }

    #[test]
    fn slash_and_nul_are_shown_as_visible_stand_ins_and_slash_reverses() {
        assert_eq!(escape("a/b/c"), "a∕b∕c");
        assert_eq!(escape("x\0y"), "x␀y");
        assert_eq!(unescape(&escape("a/b/c")), "a/b/c");
    }

    #[test]
    fn among_duplicates_the_lowest_id_keeps_the_name() {
        let names = assign(&[
            file(9, "report.pdf"),
            file(4, "report.pdf"),
            file(7, "report.pdf"),
        ]);
        assert_eq!(names, ["report~9.pdf", "report.pdf", "report~7.pdf"]);
    }

    #[test]
    fn duplicate_folders_get_the_id_at_the_end() {
        let names = assign(&[folder(5, "v1.2"), folder(2, "v1.2")]);
        assert_eq!(names, ["v1.2~5", "v1.2"]);
    }

    #[test]
    fn a_folder_wins_over_a_file_of_the_same_id_and_name() {
        let names = assign(&[file(3, "same"), folder(3, "same")]);
        assert_eq!(names, ["same~3", "same"]);
    }

    #[test]
    fn names_that_collide_only_after_escaping_are_told_apart() {
        let names = assign(&[file(1, "a/b"), file(2, "a∕b")]);
        assert_eq!(names, ["a∕b", "a∕b~2"]);
    }

    #[test]
    fn dot_files_and_names_without_extension_get_the_id_at_the_end() {
        let names = assign(&[
            file(1, ".bashrc"),
            file(2, ".bashrc"),
            file(3, "Makefile"),
            file(4, "Makefile"),
        ]);
        assert_eq!(names, [".bashrc", ".bashrc~2", "Makefile", "Makefile~4"]);
    }

    #[test]
    fn a_generated_name_that_is_taken_gets_the_id_again() {
        let names = assign(&[file(1, "a.txt"), file(2, "a.txt"), file(3, "a~2.txt")]);
        assert_eq!(names, ["a.txt", "a~2~2.txt", "a~2.txt"]);
    }

    #[test]
    fn empty_and_dot_names_are_made_valid_with_the_id() {
        let names = assign(&[file(1, ""), folder(2, "."), folder(3, "..")]);
        assert_eq!(names, ["~1", ".~2", "..~3"]);
    }

    #[test]
    fn overlong_names_are_cut_to_255_bytes_keeping_the_extension() {
        let long = format!("{}.tar.gz", "é".repeat(200));
        let names = assign(&[file(12345, &long)]);
        let name = &names[0];
        assert!(name.len() <= NAME_MAX, "{} bytes", name.len());
        assert!(name.ends_with("~12345.gz"), "{name}");
        assert!(name.starts_with("éé"));
    }

    #[test]
    fn overlong_names_with_an_overlong_extension_are_cut_as_a_whole() {
        let long = format!("a.{}", "x".repeat(300));
        let name = preferred(ItemKind::File, 7, &long);
        assert_eq!(name.len(), NAME_MAX);
        assert!(name.ends_with("~7"));
    }

    #[test]
    fn assignment_does_not_depend_on_listing_order() {
        let forward = [file(1, "x"), file(2, "x"), folder(1, "x"), file(3, "y/z")];
        let mut backward = forward;
        backward.reverse();
        let mut a = assign(&forward);
        let mut b = assign(&backward);
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn every_assigned_name_is_distinct_and_valid() {
        let raw = [
            "", ".", "..", "a", "a", "a/b", "a∕b", "a~2", "a\0", "ok.txt", "ok.txt",
        ];
        let items: Vec<NameRequest<'_>> = raw
            .iter()
            .enumerate()
            .map(|(i, name)| file(i as u64 + 1, name))
            .collect();
        let names = assign(&items);
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
        for name in &names {
            assert!(!name.is_empty() && name != "." && name != "..");
            assert!(!name.contains('/') && !name.contains('\0'));
            assert!(name.len() <= NAME_MAX);
        }
    }
}
