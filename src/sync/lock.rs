//! A mutex whose lock never fails. The standard one reports poisoning: a thread panicked while
//! holding it. No lock in yetifs guards an invariant that a half-finished update can break
//! (each holder changes its state in one step or leaves it as it found it), and a panic has
//! already been logged by the hook, so every caller wrote the same
//! `lock().unwrap_or_else(PoisonError::into_inner)`; here it is written once.
use std::sync::PoisonError;
use std::time::Duration;

pub use std::sync::MutexGuard;

/// A mutual-exclusion lock that hands out its guard even after a holder panicked.
#[derive(Debug, Default)]
pub struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock and returns its guard.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A condition variable for [`Mutex`] guards, as tolerant of poisoning as the mutex.
#[derive(Debug, Default)]
pub struct Condvar(std::sync::Condvar);

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Self {
        Self(std::sync::Condvar::new())
    }

    /// Releases `guard`, waits for a notification, and takes the lock again.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// As [`Condvar::wait`], giving up after `timeout`.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        match self.0.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_lock_whose_holder_panicked_is_still_handed_out_with_its_value() {
        let mutex = Arc::new(Mutex::new(7));
        let held = Arc::clone(&mutex);
        let panicked = std::thread::spawn(move || {
            let _guard = held.lock();
            panic!("holder fails");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(*mutex.lock(), 7);
    }
}
