//! Microbenchmarks of the metadata hot paths: finding an inode (every FUSE request starts with
//! one), recording a listing's entries in the inode table, and parsing a `folder/listing` reply.
//! Run with `cargo bench --bench hot_paths`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use yetifs::api::model::FolderListing;
use yetifs::fs::namespace::inode::{InodeTable, NodeData};
use yetifs::fs::ROOT_INO;
use yetifs::remote::{FileEntry, FolderEntry};

/// 10,000 files in 500 folders, as the metadata benchmark of `scripts/bench`.
const FOLDERS: u64 = 500;
const FILES_PER_FOLDER: u64 = 20;

fn file(id: u64, folder: u64) -> NodeData {
    NodeData::File(FileEntry {
        id,
        folder: Some(folder),
        name: format!("file-{id:05}.txt"),
        size: 4096,
        short_url: format!("s{id}"),
        url: None,
        downloads: 0,
        trashed: false,
        file_type: String::new(),
    })
}

fn folder(id: u64) -> NodeData {
    NodeData::Folder(FolderEntry {
        id,
        parent: None,
        name: format!("dir-{id:03}"),
        is_public: 0,
        created: None,
        updated: None,
        url: None,
        trashed: false,
    })
}

/// The table after `ls -lR` of the benchmark's tree; answers it, the inodes of the folders and
/// the inodes of the files.
fn populated() -> (InodeTable, Vec<u64>, Vec<u64>) {
    let mut table = InodeTable::new();
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for d in 0..FOLDERS {
        let dir = table.upsert(ROOT_INO, format!("dir-{d:03}"), folder(d));
        dirs.push(dir);
        for f in 0..FILES_PER_FOLDER {
            let id = d * FILES_PER_FOLDER + f;
            files.push(table.upsert(dir, format!("file-{id:05}.txt"), file(id, d)));
        }
    }
    (table, dirs, files)
}

fn inode_lookup(c: &mut Criterion) {
    let (table, dirs, files) = populated();
    let mut i = 0;
    c.bench_function("inode get (10,000 files)", |b| {
        b.iter(|| {
            i = (i + 7919) % files.len();
            black_box(table.get(black_box(files[i])).map(|n| n.parent))
        })
    });
    c.bench_function("inode get, unknown", |b| {
        b.iter(|| black_box(table.get(black_box(u64::MAX)).is_some()))
    });

    // A listing seen again (the warm path of `ls -lR`): every entry is known already.
    let mut table = table;
    let mut group = c.benchmark_group("inode upsert");
    group.throughput(Throughput::Elements(FILES_PER_FOLDER));
    group.bench_function("a folder of 20 files seen again", |b| {
        let mut d = 0;
        b.iter_batched(
            || {
                d = (d + 1) % FOLDERS;
                let entries = (0..FILES_PER_FOLDER)
                    .map(|f| {
                        let id = d * FILES_PER_FOLDER + f;
                        (format!("file-{id:05}.txt"), file(id, d))
                    })
                    .collect::<Vec<_>>();
                (dirs[d as usize], entries)
            },
            |(dir, entries)| {
                for (name, data) in entries {
                    black_box(table.upsert(dir, name, data));
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A `folder/listing` reply's `data` as a 5.x server writes it (numbers as strings, dates,
/// URLs), with `folders` subfolders and `files` files.
fn listing_json(folders: u64, files: u64) -> String {
    let folder = |i: u64| {
        serde_json::json!({
            "id": (1000 + i).to_string(), "parentId": "7", "folderName": format!("dir-{i:03}"),
            "totalSize": "81920", "isPublic": "0", "date_added": "2026-11-23 12:00:00",
            "date_updated": "2026-11-23 12:00:00", "url_folder": format!("https://h.test/folder/{i}"),
            "total_downloads": "0", "child_folder_count": "0", "file_count": "20", "status": "active",
        })
    };
    let file = |i: u64| {
        serde_json::json!({
            "id": (50_000 + i).to_string(), "filename": format!("file-{i:05}.txt"),
            "shortUrl": format!("a{i:x}"), "fileType": "text/plain", "extension": "txt",
            "fileSize": "4096", "status": "active", "downloads": "0", "folderId": "7",
            "keywords": "", "url_file": format!("https://h.test/a{i:x}/file-{i:05}.txt"),
        })
    };
    serde_json::json!({
        "folders": (0..folders).map(folder).collect::<Vec<_>>(),
        "files": (0..files).map(file).collect::<Vec<_>>(),
    })
    .to_string()
}

fn listing_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("listing parse");
    for (folders, files) in [(0, 20), (20, 1000)] {
        let body = listing_json(folders, files);
        group.throughput(Throughput::Elements(folders + files));
        group.bench_function(format!("{folders} folders, {files} files"), |b| {
            b.iter(|| {
                let listing: FolderListing =
                    serde_json::from_str(black_box(&body)).expect("listing parses");
                black_box(listing.files.len() + listing.folders.len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = inode_lookup, listing_parse
}
criterion_main!(benches);
