//! The synchronisation primitives every layer uses, in one place: a mutex that survives a
//! panicking holder (`Mutex`), single-flight of fetches (`Flights`), and the wall clock
//! (`clock`). Every lock in the crate is taken through here, so a schedule-exploring test (loom,
//! shuttle) can swap the primitives underneath without touching the layers.
pub mod clock;
mod flight;
mod lock;

pub use self::flight::{Acquire, Claim, Flights, Waiter};
pub use self::lock::{Condvar, Mutex, MutexGuard};
