//! yetifs: a FUSE filesystem over the YetiShare "File Upload Script" API v2.
pub mod api;
pub mod cache;
pub mod content;
pub mod emulator;
pub mod remote;
