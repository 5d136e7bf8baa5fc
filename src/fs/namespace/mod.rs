//! The namespace: which inode is which item, the names shown for a folder's items, the listings
//! kept and when they expire, and the changes to the tree (create, mkdir, rename, unlink,
//! rmdir). It owns the tree lock and the listings' single flight.
//!
//! - `inode`: inode numbers ↔ remote ids, lookup counts, the items only this machine has;
//! - `names`: a folder listing made into valid, distinct directory names;
//! - `listed`: one listing as kept, with its age and its local edits;
//! - `listing`: fetching a folder's listing once per TTL, from the server, from the kept copy on
//!   disk, or stale while offline, and installing it in the tree;
//! - `changes`: the operations that change the tree on the server and edit the kept listings to
//!   match.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::fs::error::FsError;
use crate::fs::handles::Handles;
use crate::sync::{Flights, Mutex, MutexGuard};

pub(in crate::fs) mod changes;
pub mod inode;
pub(in crate::fs) mod listed;
mod listing;
pub mod names;

use self::inode::{Ino, InodeTable, NodeData};
use self::listed::{Child, Listed};

/// The namespace's state and its locks. Lock order: `tree` before `hidden` (no code takes both
/// today); neither is held across an `.await`, a server call or a write to SQLite.
#[derive(Default)]
pub(in crate::fs) struct Namespace {
    tree: Mutex<Tree>,
    hidden: Mutex<Hidden>,
    /// One listing fetch per directory at a time.
    pub(in crate::fs) listing_flights: Arc<Flights<Ino, Arc<Listed>, FsError>>,
}

impl Namespace {
    /// Takes the tree lock. Short, synchronous work only.
    pub(in crate::fs) fn lock_tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock()
    }

    /// Takes the lock of the hidden items.
    pub(in crate::fs) fn lock_hidden(&self) -> MutexGuard<'_, Hidden> {
        self.hidden.lock()
    }
}

/// Items the write path has made invisible: on 4.x servers a deleted folder comes back at the
/// root looking alive, so it is renamed to a reserved name before deletion and remembered.
#[derive(Debug, Default)]
pub(in crate::fs) struct Hidden {
    pub(in crate::fs) names: HashSet<String>,
    pub(in crate::fs) folders: HashSet<u64>,
}

/// The shown tree at one moment: which inode is which item, the listings kept, and the open
/// handles. Everything here changes together under the one tree lock.
#[derive(Default)]
pub(in crate::fs) struct Tree {
    pub(in crate::fs) inodes: InodeTable,
    pub(in crate::fs) listings: HashMap<Ino, Arc<Listed>>,
    /// Local edits of each directory's listing so far: a listing fetched while one was made
    /// may lack it, so it is not trusted.
    pub(in crate::fs) edits: HashMap<Ino, u64>,
    pub(in crate::fs) handles: Handles,
}

/// A listing `Tree::relist` edited, whose copy kept on disk for later mounts is now out of
/// date. Marking it so is a write to SQLite, never made under the tree lock: the caller hands
/// this to `Core::expire_kept` once the lock is released.
pub(in crate::fs) struct Relisted {
    /// The folder listed (`None`: the root).
    folder: Option<u64>,
}

impl Tree {
    /// Changes the cached listing of `dir`, if there is one: takes out the entries of `remove`
    /// and any entry named as `add`, then puts in `add`. Entries taken out are dropped from the
    /// inode table if nothing else refers to them. Returns the listing to mark out of date on
    /// disk when there was one to edit.
    #[must_use = "the kept listing is marked out of date with `Core::expire_kept`"]
    pub(in crate::fs) fn relist(
        &mut self,
        dir: Ino,
        remove: &[Ino],
        add: Option<Child>,
    ) -> Option<Relisted> {
        *self.edits.entry(dir).or_default() += 1;
        let listed = self.listings.get(&dir)?;
        let (edited, gone) = listed.edited(remove, add);
        self.listings.insert(dir, Arc::new(edited));
        let folder = match self.inodes.get(dir).map(|node| &node.data) {
            Some(NodeData::Folder(f)) => Some(f.id),
            _ => None,
        };
        for ino in gone {
            self.drop_if_unreferenced(ino);
        }
        Some(Relisted { folder })
    }

    /// Drops `ino` if nothing refers to it: no lookups, no handles, and not in its parent's
    /// cached listing. Dropping a directory drops its listing and, in turn, the unreferenced
    /// entries of it.
    pub(in crate::fs) fn drop_if_unreferenced(&mut self, ino: Ino) {
        let mut work = vec![ino];
        while let Some(ino) = work.pop() {
            let Some(node) = self.inodes.get(ino) else {
                continue;
            };
            let listed = self
                .listings
                .get(&node.parent)
                .is_some_and(|l| l.contains(ino));
            if listed || !self.inodes.is_unreferenced(ino) {
                continue;
            }
            self.inodes.remove(ino);
            if let Some(listing) = self.listings.remove(&ino) {
                work.extend(listing.children().iter().map(|c| c.ino));
            }
        }
    }
}
