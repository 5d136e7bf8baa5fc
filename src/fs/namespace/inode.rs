//! The inode table: which inode number stands for which remote item, where it sits and what
//! the server last said about it. Inode numbers are handed out once per remote item and never
//! reused or changed while mounted, even after the kernel forgets an inode and its data is
//! dropped: the same item found again gets its old number back.
use std::collections::HashMap;

use crate::remote::{FileEntry, FolderEntry};

/// An inode number as the kernel sees it.
pub type Ino = u64;

/// The root directory's inode number, fixed by FUSE.
pub const ROOT_INO: Ino = 1;

/// The remote item an inode stands for. Files and folders have separate id spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemoteKey {
    /// The account's root folder.
    Root,
    /// A folder by id.
    Folder(u64),
    /// A file by id.
    File(u64),
    /// A file that exists only locally (empty, or not uploaded yet), by staging key.
    Local(u64),
}

/// A file the server does not have yet: waiting for its first upload. Its staging key names
/// its journal entry and staged bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// The staging key.
    pub key: u64,
    /// The folder it belongs in (`None`: the root).
    pub folder: Option<u64>,
    /// The name it is to have on the server.
    pub name: String,
    /// Its size when last written down.
    pub size: u64,
    /// A symbolic link: its content is the target.
    pub symlink: bool,
}

/// What the server last said about an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeData {
    /// The root has no server record.
    Root,
    /// A folder's listing entry.
    Folder(FolderEntry),
    /// A file's listing entry.
    File(FileEntry),
    /// A file only this mount has.
    Local(LocalFile),
}

impl NodeData {
    /// The remote item this data describes.
    pub fn key(&self) -> RemoteKey {
        match self {
            NodeData::Root => RemoteKey::Root,
            NodeData::Folder(f) => RemoteKey::Folder(f.id),
            NodeData::File(f) => RemoteKey::File(f.id),
            NodeData::Local(l) => RemoteKey::Local(l.key),
        }
    }

    /// Whether the item is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, NodeData::Root | NodeData::Folder(_))
    }
}

/// One live inode.
#[derive(Clone, Debug)]
pub struct Node {
    /// The directory it was last seen in (the root is its own parent).
    pub parent: Ino,
    /// Its name in that directory, as shown (see `names`).
    pub name: String,
    /// The server's record.
    pub data: NodeData,
    lookups: u64,
    open: u32,
    /// Removed from its directory (unlinked, or replaced by a rename) while still held.
    unlinked: bool,
}

/// All live inodes, plus the number of every item ever seen.
#[derive(Debug)]
pub struct InodeTable {
    nodes: HashMap<Ino, Node>,
    numbers: HashMap<RemoteKey, Ino>,
    next: Ino,
}

impl Default for InodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl InodeTable {
    /// A table holding only the root.
    pub fn new() -> Self {
        let root = Node {
            parent: ROOT_INO,
            name: String::new(),
            data: NodeData::Root,
            lookups: 0,
            open: 0,
            unlinked: false,
        };
        Self {
            nodes: HashMap::from([(ROOT_INO, root)]),
            numbers: HashMap::from([(RemoteKey::Root, ROOT_INO)]),
            next: ROOT_INO + 1,
        }
    }

    /// The live inode `ino`.
    pub fn get(&self, ino: Ino) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The live inode standing for `key`, if any.
    pub fn find(&self, key: RemoteKey) -> Option<Ino> {
        self.numbers
            .get(&key)
            .copied()
            .filter(|ino| self.nodes.contains_key(ino))
    }

    /// Records that `data` sits in `parent` under `name`; returns its inode, the same one as
    /// before if the item was seen before.
    pub fn upsert(&mut self, parent: Ino, name: String, data: NodeData) -> Ino {
        let key = data.key();
        let ino = match self.numbers.get(&key) {
            Some(&ino) => ino,
            None => {
                let ino = self.next;
                self.next += 1;
                self.numbers.insert(key, ino);
                ino
            }
        };
        match self.nodes.get_mut(&ino) {
            Some(node) => {
                node.parent = parent;
                node.name = name;
                node.data = data;
                node.unlinked = false;
            }
            None => {
                self.nodes.insert(
                    ino,
                    Node {
                        parent,
                        name,
                        data,
                        lookups: 0,
                        open: 0,
                        unlinked: false,
                    },
                );
            }
        }
        ino
    }

    /// Gives `ino` new data under a new key (a file that got a new server id, or became local):
    /// the inode number stays. Another inode already standing for the new key is dropped and
    /// returned, so that the caller can take it out of listings.
    pub fn rekey(&mut self, ino: Ino, data: NodeData) -> Option<Ino> {
        let key = data.key();
        let displaced = self
            .numbers
            .get(&key)
            .copied()
            .filter(|&other| other != ino);
        if let Some(other) = displaced {
            self.nodes.remove(&other);
        }
        let node = self.nodes.get_mut(&ino)?;
        self.numbers.remove(&node.data.key());
        node.data = data;
        self.numbers.insert(key, ino);
        displaced
    }

    /// Records that `ino` now sits in `parent` under `name`.
    pub fn place(&mut self, ino: Ino, parent: Ino, name: String) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.parent = parent;
            node.name = name;
        }
    }

    /// Records that `ino` was removed from its directory: until it is seen in a listing again,
    /// it has no name, so its link count is 0 (what `fstat` on a handle still open shows).
    pub fn mark_unlinked(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.unlinked = true;
        }
    }

    /// Whether `ino` was removed from its directory (see `mark_unlinked`).
    pub fn is_unlinked(&self, ino: Ino) -> bool {
        self.nodes.get(&ino).is_some_and(|node| node.unlinked)
    }

    /// How many open handles `ino` has.
    pub fn open_handles(&self, ino: Ino) -> u32 {
        self.nodes.get(&ino).map_or(0, |node| node.open)
    }

    /// Counts `n` kernel lookups of `ino` (a lookup reply or a readdirplus entry).
    pub fn add_lookups(&mut self, ino: Ino, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups += n;
        }
    }

    /// The kernel forgot `n` lookups of `ino`.
    pub fn forget(&mut self, ino: Ino, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
        }
    }

    /// Counts an open handle on `ino`.
    pub fn opened(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.open += 1;
        }
    }

    /// An open handle on `ino` was released.
    pub fn closed(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.open = node.open.saturating_sub(1);
        }
    }

    /// Whether nothing holds `ino`: no kernel lookups, no open handles, and it is not the root.
    pub fn is_unreferenced(&self, ino: Ino) -> bool {
        ino != ROOT_INO
            && self
                .nodes
                .get(&ino)
                .is_some_and(|node| node.lookups == 0 && node.open == 0)
    }

    /// Drops the data of `ino`; its number stays reserved for its item.
    pub fn remove(&mut self, ino: Ino) -> Option<Node> {
        if ino == ROOT_INO {
            return None;
        }
        self.nodes.remove(&ino)
    }

    /// How many inodes are live.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root is live.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// Every live node.
    pub fn nodes(&self) -> impl Iterator<Item = (Ino, &Node)> {
        self.nodes.iter().map(|(&ino, node)| (ino, node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u64) -> NodeData {
        NodeData::File(FileEntry {
            id,
            folder: None,
            name: format!("f{id}"),
            size: 1,
            short_url: String::new(),
            url: None,
            downloads: 0,
            trashed: false,
            file_type: String::new(),
        })
    }

    #[test]
    fn the_root_is_inode_one_and_is_never_dropped() {
        let mut table = InodeTable::new();
        assert!(table
            .get(ROOT_INO)
            .is_some_and(|n| n.data == NodeData::Root));
        assert!(!table.is_unreferenced(ROOT_INO));
        assert!(table.remove(ROOT_INO).is_none());
    }

    #[test]
    fn an_item_keeps_its_number_across_updates_and_drops() {
        let mut table = InodeTable::new();
        let first = table.upsert(ROOT_INO, "a".into(), file(7));
        let again = table.upsert(ROOT_INO, "b".into(), file(7));
        assert_eq!(first, again);
        assert_eq!(table.get(first).map(|n| n.name.as_str()), Some("b"));
        table.remove(first);
        assert!(table.get(first).is_none());
        let after_drop = table.upsert(ROOT_INO, "a".into(), file(7));
        assert_eq!(first, after_drop);
    }

    #[test]
    fn a_file_and_a_folder_with_the_same_id_get_different_numbers() {
        let mut table = InodeTable::new();
        let f = table.upsert(ROOT_INO, "f".into(), file(3));
        let folder = NodeData::Folder(FolderEntry {
            id: 3,
            parent: None,
            name: "d".into(),
            is_public: 0,
            created: None,
            updated: None,
            url: None,
            trashed: false,
        });
        let d = table.upsert(ROOT_INO, "d".into(), folder);
        assert_ne!(f, d);
    }

    #[test]
    fn an_unlinked_node_is_named_again_only_by_a_listing() {
        let mut table = InodeTable::new();
        let ino = table.upsert(ROOT_INO, "a".into(), file(1));
        table.mark_unlinked(ino);
        assert!(table.is_unlinked(ino));
        table.upsert(ROOT_INO, "a".into(), file(1));
        assert!(!table.is_unlinked(ino));
    }

    #[test]
    fn lookups_and_open_handles_keep_a_node_referenced() {
        let mut table = InodeTable::new();
        let ino = table.upsert(ROOT_INO, "a".into(), file(1));
        assert!(table.is_unreferenced(ino));
        table.add_lookups(ino, 2);
        table.opened(ino);
        table.forget(ino, 2);
        assert!(!table.is_unreferenced(ino));
        table.closed(ino);
        assert!(table.is_unreferenced(ino));
    }

    #[test]
    fn a_rekeyed_inode_keeps_its_number_and_displaces_a_duplicate() {
        let mut table = InodeTable::new();
        let ino = table.upsert(ROOT_INO, "a".into(), file(1));
        let other = table.upsert(ROOT_INO, "a (2)".into(), file(2));
        assert_eq!(table.rekey(ino, file(2)), Some(other));
        assert!(table.get(other).is_none());
        assert_eq!(table.upsert(ROOT_INO, "a".into(), file(2)), ino);
        let again = table.upsert(ROOT_INO, "old".into(), file(1));
        assert_ne!(again, ino);
        let local = NodeData::Local(LocalFile {
            key: 9,
            folder: None,
            name: "a".into(),
            size: 0,
            symlink: false,
        });
        assert_eq!(table.rekey(ino, local), None);
        assert!(!table.get(ino).unwrap().data.is_dir());
    }
}
