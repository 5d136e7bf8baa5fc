//! The typed async client of API v2.
pub mod error;
