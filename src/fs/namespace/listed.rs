//! Cached folder listings: a folder's shown children at one moment, how old they are, and the
//! edits a create, rename or delete makes to them without asking the server again. One
//! `folder/listing` per folder per TTL: fetches go through `sync::SingleFlight`.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::fs::attr::Kind;
use crate::fs::namespace::inode::Ino;

/// One entry of a directory as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// The shown name (see `names`).
    pub name: String,
    /// Its inode.
    pub ino: Ino,
    /// Directory or file.
    pub kind: Kind,
}

/// A directory's shown content at one moment.
#[derive(Debug)]
pub struct Listed {
    children: Vec<Child>,
    by_name: HashMap<String, usize>,
    inos: HashSet<Ino>,
    /// When the server sent it; `None` when older than this process can date (never fresh).
    fetched: Option<Instant>,
}

impl Listed {
    /// A listing fetched at `fetched`, its entries sorted by name.
    pub fn new(children: Vec<Child>, fetched: Instant) -> Self {
        Self::dated(children, Some(fetched))
    }

    /// A listing fetched `age` ago (one kept on disk by an earlier mount).
    pub fn aged(children: Vec<Child>, age: Duration) -> Self {
        Self::dated(children, Instant::now().checked_sub(age))
    }

    fn dated(mut children: Vec<Child>, fetched: Option<Instant>) -> Self {
        children.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = children
            .iter()
            .enumerate()
            .map(|(i, child)| (child.name.clone(), i))
            .collect();
        let inos = children.iter().map(|child| child.ino).collect();
        Self {
            children,
            by_name,
            inos,
            fetched,
        }
    }

    /// The entries, sorted by name.
    pub fn children(&self) -> &[Child] {
        &self.children
    }

    /// The entry shown as `name`.
    pub fn find(&self, name: &str) -> Option<&Child> {
        self.by_name.get(name).map(|&i| &self.children[i])
    }

    /// Whether `ino` is one of the entries.
    pub fn contains(&self, ino: Ino) -> bool {
        self.inos.contains(&ino)
    }

    /// A copy without the entries `remove` and any entry named as `add`, with `add` put in;
    /// as old as this one. Also returns the inodes taken out.
    pub fn edited(&self, remove: &[Ino], add: Option<Child>) -> (Listed, Vec<Ino>) {
        let mut gone = Vec::new();
        let mut children: Vec<Child> = self
            .children
            .iter()
            .filter(|c| {
                let out = remove.contains(&c.ino) || add.as_ref().is_some_and(|a| a.name == c.name);
                if out && add.as_ref().is_none_or(|a| a.ino != c.ino) {
                    gone.push(c.ino);
                }
                !out
            })
            .cloned()
            .collect();
        children.extend(add);
        (Listed::dated(children, self.fetched), gone)
    }

    /// A copy that is never fresh.
    pub fn expired(&self) -> Listed {
        Listed::dated(self.children.clone(), None)
    }

    /// Whether the listing is younger than `ttl`.
    pub fn is_fresh(&self, ttl: Duration) -> bool {
        self.fetched.is_some_and(|at| at.elapsed() < ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str, ino: Ino) -> Child {
        Child {
            name: name.into(),
            ino,
            kind: Kind::File,
        }
    }

    #[test]
    fn a_listing_is_sorted_and_found_by_name_and_inode() {
        let listed = Listed::new(vec![child("b", 3), child("a", 2)], Instant::now());
        let names: Vec<&str> = listed.children().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(listed.find("b").map(|c| c.ino), Some(3));
        assert!(listed.find("c").is_none());
        assert!(listed.contains(2) && !listed.contains(4));
    }

    #[test]
    fn an_edited_listing_replaces_by_name_and_reports_what_went() {
        let listed = Listed::new(vec![child("a", 2), child("b", 3)], Instant::now());
        let (edited, gone) = listed.edited(&[3], Some(child("a", 4)));
        assert_eq!(edited.children(), [child("a", 4)]);
        assert_eq!(gone, [2, 3]);
        let (renamed, gone) = edited.edited(&[4], Some(child("z", 4)));
        assert_eq!(renamed.children(), [child("z", 4)]);
        assert!(gone.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_listing_is_fresh_only_for_its_ttl() {
        let listed = Listed::new(vec![], Instant::now());
        assert!(listed.is_fresh(Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!listed.is_fresh(Duration::from_millis(50)));
    }

    #[test]
    fn a_listing_kept_from_earlier_is_fresh_only_for_what_is_left_of_its_ttl() {
        let ttl = Duration::from_secs(30);
        assert!(Listed::aged(vec![], Duration::from_secs(10)).is_fresh(ttl));
        assert!(!Listed::aged(vec![], Duration::from_secs(31)).is_fresh(ttl));
        let year = Duration::from_secs(365 * 86_400);
        let epoch_old = Listed::aged(vec![], 56 * year);
        assert!(!epoch_old.is_fresh(year));
        let undatable = Listed::aged(vec![child("a", 2)], Duration::MAX);
        assert!(!undatable.is_fresh(Duration::MAX));
        let (edited, _) = undatable.edited(&[], Some(child("b", 3)));
        assert!(!edited.is_fresh(Duration::MAX));
        let expired = Listed::new(vec![child("a", 2)], Instant::now()).expired();
        assert!(!expired.is_fresh(Duration::MAX));
        assert_eq!(expired.children(), [child("a", 2)]);
    }
}
