//! When the next `/authorize` may go. Every `/authorize` kills the token the account's other
//! clients hold, so clients that re-authorize as soon as their token is refused take it from
//! each other request after request and none gets work done. Instead a client whose token was
//! taken while young waits before taking it back — a holdoff that doubles with each young token
//! lost in a row, jittered, capped — so that the clients take turns of growing length; a token
//! that was taken before it served a single request does not lengthen the wait (its client had
//! no turn); a token that lived long ends the contest. Two `/authorize` of one client are never
//! closer than the policy's minimum spacing.
//!
//! Pure bookkeeping: the caller passes the clock and the jitter, so every rule is tested
//! without waiting.
use std::time::{Duration, Instant};

use super::config::TokenPolicy;

/// Doublings of the holdoff counted at most (the cap is reached long before).
const MAX_STEPS: u32 = 16;

/// What one client knows about its recent logins.
#[derive(Clone, Debug)]
pub(crate) struct Pacing {
    /// The rules.
    policy: TokenPolicy,
    /// When the last `/authorize` was sent.
    last_authorize: Option<Instant>,
    /// No `/authorize` before this, after a token was taken.
    hold_until: Option<Instant>,
    /// Young tokens that had served requests, taken in a row: the length of the contest.
    turns: u32,
    /// Young tokens taken in a row before they served anything.
    barren: u32,
    /// When a token was last taken.
    last_loss: Option<Instant>,
}

impl Pacing {
    /// No login yet.
    pub fn new(policy: TokenPolicy) -> Self {
        Pacing {
            policy,
            last_authorize: None,
            hold_until: None,
            turns: 0,
            barren: 0,
            last_loss: None,
        }
    }

    /// Records that the token issued at `issued` was refused at `now` — another client took
    /// it — and whether it had `served` any request. Returns the holdoff before the next
    /// `/authorize`; `jitter` in `[0, 1)` picks it between half and all of the step, so that
    /// clients that lost their tokens together do not come back together.
    pub fn lost(&mut self, issued: Instant, served: bool, now: Instant, jitter: f64) -> Duration {
        let lifetime = now.saturating_duration_since(issued);
        let steps = if lifetime >= self.policy.calm {
            self.turns = 0;
            self.barren = 0;
            0
        } else if served {
            self.barren = 0;
            self.turns = (self.turns + 1).min(MAX_STEPS);
            self.turns
        } else {
            self.barren = (self.barren + 1).min(MAX_STEPS);
            self.barren
        };
        let holdoff = self.holdoff(steps, jitter);
        self.hold_until = Some(now + holdoff);
        self.last_loss = Some(now);
        holdoff
    }

    /// Whether another client took a token after `since`, or during the calm period before
    /// it: then a token held for a while is likely taken already.
    pub fn contested_since(&self, since: Instant) -> bool {
        self.last_loss
            .is_some_and(|at| at + self.policy.calm >= since)
    }

    /// The wait after `steps` young tokens lost in a row.
    fn holdoff(&self, steps: u32, jitter: f64) -> Duration {
        if steps == 0 {
            return Duration::ZERO;
        }
        self.policy
            .first_holdoff
            .saturating_mul(1 << (steps - 1))
            .min(self.policy.max_holdoff)
            .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The earliest moment the next `/authorize` may be sent; `None`: at once.
    pub fn next_authorize(&self) -> Option<Instant> {
        let spaced = self.last_authorize.map(|at| at + self.policy.min_spacing);
        spaced.max(self.hold_until)
    }

    /// Records an `/authorize` sent at `now`.
    pub fn authorizing(&mut self, now: Instant) {
        self.last_authorize = Some(now);
        self.hold_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            refused_deadline: Duration::from_secs(60),
            min_spacing: Duration::from_millis(500),
            first_holdoff: Duration::from_millis(500),
            max_holdoff: Duration::from_secs(3),
            calm: Duration::from_secs(15),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_login_goes_at_once_and_the_next_no_sooner_than_the_minimum_spacing() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(policy());
        assert_eq!(pacing.next_authorize(), None);
        pacing.authorizing(t0);
        assert_eq!(pacing.next_authorize(), Some(t0 + ms(500)));
    }

    #[test]
    fn a_token_taken_after_a_long_life_is_replaced_at_once() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(policy());
        pacing.authorizing(t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(pacing.lost(t0, true, later, 0.9), Duration::ZERO);
        assert!(pacing.next_authorize() <= Some(later));
    }

    #[test]
    fn young_tokens_taken_in_a_row_double_the_holdoff_up_to_the_cap() {
        let mut pacing = Pacing::new(policy());
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..6 {
            pacing.authorizing(now);
            let issued = now;
            now += ms(100);
            let wait = pacing.lost(issued, true, now, 1.0);
            assert_eq!(pacing.next_authorize(), Some(now + wait.max(ms(400))));
            waits.push(wait.as_millis());
            now += wait;
        }
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000, 3000]);
    }

    #[test]
    fn jitter_puts_the_holdoff_between_half_and_all_of_the_step() {
        let t0 = Instant::now();
        for (jitter, expected) in [(0.0, 250), (0.5, 375), (0.999_999, 499)] {
            let mut pacing = Pacing::new(policy());
            let wait = pacing.lost(t0, true, t0 + ms(10), jitter);
            assert_eq!(wait.as_millis(), expected, "jitter {jitter}");
        }
    }

    #[test]
    fn a_token_taken_before_it_served_anything_does_not_lengthen_the_turns() {
        let mut pacing = Pacing::new(policy());
        let t0 = Instant::now();
        pacing.lost(t0, true, t0 + ms(10), 1.0);
        pacing.lost(t0, true, t0 + ms(20), 1.0);
        assert_eq!(pacing.lost(t0, false, t0 + ms(30), 1.0), ms(500));
        assert_eq!(
            pacing.lost(t0, true, t0 + ms(40), 1.0),
            ms(2000),
            "the contest goes on where it was"
        );
    }

    #[test]
    fn tokens_that_never_serve_still_back_off_so_a_server_refusing_all_is_not_hammered() {
        let mut pacing = Pacing::new(policy());
        let t0 = Instant::now();
        let waits: Vec<_> = (1..=5)
            .map(|i| pacing.lost(t0, false, t0 + ms(i), 1.0).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
    }

    #[test]
    fn a_long_lived_token_ends_the_contest() {
        let mut pacing = Pacing::new(policy());
        let t0 = Instant::now();
        for i in 1..=4 {
            pacing.lost(t0, true, t0 + ms(i), 1.0);
        }
        let late = t0 + Duration::from_secs(20);
        assert_eq!(pacing.lost(t0, true, late, 1.0), Duration::ZERO);
        assert_eq!(pacing.lost(late, true, late + ms(1), 1.0), ms(500));
    }

    #[test]
    fn an_authorize_clears_the_holdoff_and_keeps_the_spacing() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(policy());
        pacing.lost(t0, true, t0 + ms(1), 1.0);
        assert_eq!(pacing.next_authorize(), Some(t0 + ms(501)));
        pacing.authorizing(t0 + ms(501));
        assert_eq!(pacing.next_authorize(), Some(t0 + ms(1001)));
    }

    #[test]
    fn the_account_is_contested_from_a_loss_until_a_calm_period_has_passed() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(policy());
        assert!(!pacing.contested_since(t0));
        pacing.lost(t0, true, t0 + ms(10), 0.5);
        assert!(pacing.contested_since(t0));
        assert!(pacing.contested_since(t0 + Duration::from_secs(15)));
        assert!(!pacing.contested_since(t0 + Duration::from_secs(16)));
    }

    mod simulated_contest {
        //! Clients of one account, each with busy workers, against a server that keeps one
        //! token per account, in simulated time: what the rules above add up to.
        use super::*;
        use std::cmp::Reverse;
        use std::collections::{BinaryHeap, HashMap};

        /// Seeded jitter (splitmix64), so that every run is the same.
        struct Dice(u64);

        impl Dice {
            fn next(&mut self) -> f64 {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            }
        }

        /// A token: its client, its generation, when it was issued.
        #[derive(Clone, Copy, PartialEq)]
        struct Token(usize, u64);

        struct Client {
            pacing: Pacing,
            token: Option<(Token, Duration, bool)>,
            generation: u64,
            authorizing: bool,
            waiting: Vec<Duration>,
            logins: u32,
            done: u64,
            longest_wait: Duration,
        }

        enum Event {
            Authorized(usize),
            Reply(usize, Token, Duration),
        }

        /// What one run gave, per client: requests done, logins, longest wait of a request.
        struct Outcome {
            done: Vec<u64>,
            logins: Vec<u32>,
            longest_wait: Vec<Duration>,
            /// Requests one client alone would have done in the same time.
            alone: u64,
        }

        /// `clients` clients with `workers` workers each, every request taking `rtt` (the
        /// server checks its token when it arrives, at the end of it), for `run` of simulated
        /// time.
        fn contest(clients: usize, workers: usize, rtt: Duration, run: Duration) -> Outcome {
            let t0 = Instant::now();
            let mut dice = Dice(7);
            let mut server: Option<Token> = None;
            let mut events = Events::default();
            let mut all: Vec<Client> = (0..clients)
                .map(|_| Client {
                    pacing: Pacing::new(policy()),
                    token: None,
                    generation: 0,
                    authorizing: false,
                    waiting: vec![Duration::ZERO; workers],
                    logins: 0,
                    done: 0,
                    longest_wait: Duration::ZERO,
                })
                .collect();
            for (c, client) in all.iter_mut().enumerate() {
                client.authorizing = true;
                client.pacing.authorizing(t0);
                client.logins += 1;
                events.push(rtt, Event::Authorized(c));
            }
            while let Some((now, event)) = events.pop() {
                if now > run {
                    break;
                }
                match event {
                    Event::Authorized(c) => {
                        let client = &mut all[c];
                        client.generation += 1;
                        let token = Token(c, client.generation);
                        server = Some(token);
                        client.token = Some((token, now, false));
                        client.authorizing = false;
                        for since in std::mem::take(&mut client.waiting) {
                            events.push(now + rtt, Event::Reply(c, token, since));
                        }
                    }
                    Event::Reply(c, token, since) => {
                        let client = &mut all[c];
                        if server == Some(token) {
                            client.done += 1;
                            client.longest_wait = client.longest_wait.max(now - since);
                            if let Some((held, _, served)) = &mut client.token {
                                *served |= *held == token;
                            }
                            events.push(now + rtt, Event::Reply(c, token, now));
                            continue;
                        }
                        match client.token {
                            Some((held, issued, served)) if held == token => {
                                client
                                    .pacing
                                    .lost(t0 + issued, served, t0 + now, dice.next());
                                client.token = None;
                            }
                            Some((held, _, _)) => {
                                events.push(now + rtt, Event::Reply(c, held, since));
                                continue;
                            }
                            None => {}
                        }
                        client.waiting.push(since);
                        if !client.authorizing {
                            client.authorizing = true;
                            let at = client
                                .pacing
                                .next_authorize()
                                .map_or(now, |at| (at - t0).max(now));
                            client.pacing.authorizing(t0 + at);
                            client.logins += 1;
                            events.push(at + rtt, Event::Authorized(c));
                        }
                    }
                }
            }
            Outcome {
                done: all.iter().map(|c| c.done).collect(),
                logins: all.iter().map(|c| c.logins).collect(),
                longest_wait: all.iter().map(|c| c.longest_wait).collect(),
                alone: (run.as_nanos() / rtt.as_nanos()) as u64 * workers as u64,
            }
        }

        /// Events by time, then by when they were made.
        #[derive(Default)]
        struct Events {
            queue: BinaryHeap<Reverse<(Duration, u64)>>,
            pending: HashMap<u64, Event>,
            made: u64,
        }

        impl Events {
            fn push(&mut self, at: Duration, event: Event) {
                self.made += 1;
                self.queue.push(Reverse((at, self.made)));
                self.pending.insert(self.made, event);
            }

            fn pop(&mut self) -> Option<(Duration, Event)> {
                let Reverse((at, id)) = self.queue.pop()?;
                self.pending.remove(&id).map(|event| (at, event))
            }
        }

        fn check(clients: usize, rtt: Duration) {
            let minutes = 10;
            let run = Duration::from_secs(60 * minutes);
            let out = contest(clients, 4, rtt, run);
            let total: u64 = out.done.iter().sum();
            assert!(
                total * 10 >= out.alone * 7,
                "the account's token works most of the time: {total} of {}",
                out.alone
            );
            for c in 0..clients {
                assert!(
                    out.done[c] * (2 * clients as u64) >= out.alone,
                    "client {c} gets at least half its share: {:?} of {}",
                    out.done,
                    out.alone
                );
                assert!(
                    out.logins[c] <= 30 * minutes as u32,
                    "client {c} logs in at most 30 times a minute: {:?}",
                    out.logins
                );
                assert!(
                    out.longest_wait[c] <= 2 * policy().max_holdoff,
                    "no request of client {c} waits more than two turns: {:?}",
                    out.longest_wait
                );
            }
        }

        #[test]
        fn two_busy_clients_take_turns_on_a_fast_server() {
            check(2, ms(5));
        }

        #[test]
        fn three_busy_clients_take_turns_on_a_fast_server() {
            check(3, ms(5));
        }

        #[test]
        fn two_busy_clients_take_turns_across_the_internet() {
            check(2, ms(100));
        }

        #[test]
        fn three_busy_clients_take_turns_across_the_internet() {
            check(3, ms(100));
        }
    }
}
