//! yetifs: a FUSE filesystem over the YetiShare "File Upload Script" API v2.
//!
//! The layers, from the wire up: `api` (the HTTP client) implements `remote::Remote`; `content`,
//! `cache` and `staging` keep bytes and metadata locally; `fs` is the filesystem core over a
//! `Remote`, free of fuser types; `fuse` adapts the core to the kernel; `host` what a file host
//! does that a disk does not (remote upload, share links). `cli` holds the commands
//! and where settings come from, `control` what a live mount reports and the socket it answers
//! on, `system` what talks to the operating system rather than the server, `emulator` the
//! server `yetifs serve` runs, and `sync` the locks and single-flight every layer shares.
pub mod api;
pub mod cache;
pub mod cli;
pub mod content;
pub mod control;
pub mod emulator;
pub mod fs;
pub mod fuse;
pub mod host;
pub mod remote;
pub mod staging;
pub mod sync;
pub mod system;
