//! yetifs: a FUSE filesystem over the YetiShare "File Upload Script" API v2.
pub mod api;
pub mod emulator;
pub mod fs;
pub mod fuse;
pub mod memory_remote;
pub mod remote;
