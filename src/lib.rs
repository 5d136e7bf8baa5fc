//! yetifs: a FUSE filesystem over the YetiShare "File Upload Script" API v2.
pub mod api;
pub mod cache;
pub mod cli;
pub mod config;
pub mod content;
pub mod daemon;
pub mod demo;
pub mod emulator;
pub mod fs;
pub mod fuse;
pub mod known_accounts;
pub mod memory_remote;
pub mod mount_cmd;
pub mod remote;
pub mod staging;
