//! Fault injection: the `--faults` spec and the seeded dice that decide, request by request,
//! whether to answer 500, 429, or drop the connection, plus latency, a bandwidth cap on bodies,
//! a short token lifetime, and a cap on API requests served at once (a busy server answers
//! 429 with `Retry-After` to the ones beyond it).
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::sync::Mutex;

/// What `--faults` asked for. Empty means no faults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSpec {
    /// Probability of a 500 reply.
    pub error: f64,
    /// Probability of a 429 reply with `Retry-After`.
    pub too_many: f64,
    /// Probability of a dropped connection (mid-body on downloads).
    pub reset: f64,
    /// Delay added to every request.
    pub latency: Duration,
    /// Cap on body bytes per second, per request.
    pub bandwidth: Option<u64>,
    /// Idle lifetime of tokens, overriding `--token-idle-secs`.
    pub token_ttl: Option<Duration>,
    /// API requests served at once; one more is answered 429 with `Retry-After: 1`.
    pub max_in_flight: Option<usize>,
}

/// Why a `--faults` spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultSpecError {
    /// An item was not `key=value`.
    #[error("fault item {0:?} is not key=value")]
    NotPair(String),
    /// The key is not a known fault.
    #[error(
        "unknown fault {0:?} (known: error, 429, reset, latency, bandwidth, token_ttl, inflight)"
    )]
    UnknownKey(String),
    /// The value could not be read.
    #[error("bad value {value:?} for fault {key}")]
    BadValue {
        /// The fault.
        key: String,
        /// What was given.
        value: String,
    },
}

fn parse_probability(key: &str, value: &str) -> Result<f64, FaultSpecError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| FaultSpecError::BadValue {
            key: key.into(),
            value: value.into(),
        })
}

/// Reads `20ms`, `2s`, `1.5s` or a bare number of milliseconds.
fn parse_duration(key: &str, value: &str) -> Result<Duration, FaultSpecError> {
    let bad = || FaultSpecError::BadValue {
        key: key.into(),
        value: value.into(),
    };
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else {
        (value, 0.001)
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if n < 0.0 || !n.is_finite() {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(n * scale))
}

/// Reads `50MB/s`, `512KB/s`, `1GB/s`, `100B/s` (decimal units; `MiB`/`KiB` binary).
fn parse_rate(key: &str, value: &str) -> Result<u64, FaultSpecError> {
    let bad = || FaultSpecError::BadValue {
        key: key.into(),
        value: value.into(),
    };
    let v = value.strip_suffix("/s").unwrap_or(value);
    let units: [(&str, f64); 7] = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("KB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
        ("B", 1.0),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| v.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((v, 1.0));
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    let rate = (n * scale) as u64;
    if rate == 0 {
        return Err(bad());
    }
    Ok(rate)
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| FaultSpecError::NotPair(item.into()))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "error" | "500" => spec.error = parse_probability(key, value)?,
                "429" => spec.too_many = parse_probability(key, value)?,
                "reset" => spec.reset = parse_probability(key, value)?,
                "latency" => spec.latency = parse_duration(key, value)?,
                "bandwidth" => spec.bandwidth = Some(parse_rate(key, value)?),
                "token_ttl" => spec.token_ttl = Some(parse_duration(key, value)?),
                "inflight" => {
                    let cap = value.parse::<usize>().ok().filter(|&n| n > 0);
                    spec.max_in_flight = Some(cap.ok_or_else(|| FaultSpecError::BadValue {
                        key: key.into(),
                        value: value.into(),
                    })?);
                }
                other => return Err(FaultSpecError::UnknownKey(other.into())),
            }
        }
        Ok(spec)
    }
}

/// The fault chosen for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer 500.
    ServerError,
    /// Answer 429 with `Retry-After`.
    TooMany,
    /// Drop the connection (API: before the body; downloads: part-way through it).
    Reset,
}

/// The fault injector: the spec and its seeded dice.
pub struct Faults {
    /// What was asked for.
    pub spec: FaultSpec,
    rng: Mutex<StdRng>,
    /// API requests being served now.
    in_flight: Arc<AtomicUsize>,
}

/// One API request counted as being served, until dropped; `None` from [`Faults::admit`] when
/// the server is too busy for it.
pub struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Faults {
    /// An injector whose choices repeat for the same seed and the same request order.
    pub fn new(spec: FaultSpec, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Faults {
            spec,
            rng: Mutex::new(rng),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Counts an API request as being served, or refuses it (`None`) when `inflight` are
    /// served already.
    pub fn admit(&self) -> Option<Admitted> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let admitted = Admitted(Arc::clone(&self.in_flight));
        match self.spec.max_in_flight {
            Some(cap) if now >= cap => None,
            _ => Some(admitted),
        }
    }

    /// Rolls the dice for one request.
    pub fn roll(&self) -> Fault {
        let spec = &self.spec;
        if spec.error + spec.too_many + spec.reset <= 0.0 {
            return Fault::None;
        }
        let x: f64 = self.rng.lock().random();
        if x < spec.error {
            Fault::ServerError
        } else if x < spec.error + spec.too_many {
            Fault::TooMany
        } else if x < spec.error + spec.too_many + spec.reset {
            Fault::Reset
        } else {
            Fault::None
        }
    }

    /// A point in `0..len` where a reset download stops, from the same dice.
    pub fn cut_point(&self, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        self.rng.lock().random_range(0..len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_is_read() {
        let spec: FaultSpec =
            "error=0.05,429=0.02,reset=0.01,latency=20ms,bandwidth=50MB/s,token_ttl=30s,inflight=8"
                .parse()
                .unwrap();
        assert_eq!(spec.error, 0.05);
        assert_eq!(spec.too_many, 0.02);
        assert_eq!(spec.reset, 0.01);
        assert_eq!(spec.latency, Duration::from_millis(20));
        assert_eq!(spec.bandwidth, Some(50_000_000));
        assert_eq!(spec.token_ttl, Some(Duration::from_secs(30)));
        assert_eq!(spec.max_in_flight, Some(8));
    }

    #[test]
    fn requests_beyond_the_in_flight_cap_are_refused_until_one_ends() {
        let faults = Faults::new("inflight=2".parse().unwrap(), Some(1));
        let (a, b) = (faults.admit(), faults.admit());
        assert!(a.is_some() && b.is_some());
        assert!(faults.admit().is_none());
        drop(a);
        assert!(faults.admit().is_some());
        let free = Faults::new(FaultSpec::default(), Some(1));
        let many: Vec<_> = (0..100).map(|_| free.admit()).collect();
        assert!(many.iter().all(Option::is_some));
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!("error=2".parse::<FaultSpec>().is_err());
        assert!("nope=1".parse::<FaultSpec>().is_err());
        assert!("latency".parse::<FaultSpec>().is_err());
        assert!("inflight=0".parse::<FaultSpec>().is_err());
        assert!("".parse::<FaultSpec>().unwrap() == FaultSpec::default());
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let spec: FaultSpec = "error=0.3,429=0.3,reset=0.2".parse().unwrap();
        let a = Faults::new(spec.clone(), Some(7));
        let b = Faults::new(spec, Some(7));
        let ra: Vec<Fault> = (0..50).map(|_| a.roll()).collect();
        let rb: Vec<Fault> = (0..50).map(|_| b.roll()).collect();
        assert_eq!(ra, rb);
        assert!(ra.contains(&Fault::ServerError) && ra.contains(&Fault::None));
    }
}
