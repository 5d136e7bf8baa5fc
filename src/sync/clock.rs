//! Wall-clock time as the status report and the kept metadata record it: the one place that
//! reads the system clock for timestamps (durations use `Instant`, or tokio's clock where a test
//! pauses it).
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now: timestamps the status report shows.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
