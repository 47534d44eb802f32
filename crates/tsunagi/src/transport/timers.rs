//! One timer heap for a transport's many timers (sessions, tunnels,
//! calls, control connections), and the sleep of its select loop.
//!
//! Each timer's owner records the one deadline it armed; when it re-arms,
//! the old entry stays in the heap, stale, and is known as such when it
//! comes up because the owner's record no longer matches. No search of the
//! heap and no removal from its middle, whatever the churn.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Deadlines by key `K`, earliest first; see the module documentation.
pub struct TimerHeap<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> TimerHeap<K> {
    pub fn new() -> TimerHeap<K> {
        TimerHeap {
            heap: BinaryHeap::new(),
        }
    }

    /// `key`'s owner wants `deadline`; `armed` is its record of the one in
    /// the heap. A changed deadline is pushed (the old entry goes stale).
    pub fn arm(&mut self, armed: &mut Option<Instant>, deadline: Option<Instant>, key: K) {
        if deadline != *armed {
            *armed = deadline;
            if let Some(at) = deadline {
                self.heap.push(Reverse((at, key)));
            }
        }
    }

    /// A deadline with no owner's record to check against (it is live
    /// until it fires).
    pub fn push(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry due at `now`, taken off the heap; perhaps stale
    /// (see [`fired`]).
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        let Reverse((at, key)) = self.heap.peek().copied()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some((at, key))
    }

    /// The earliest entry, stale or not: waking for a stale one costs a
    /// wake-up, nothing more.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest live deadline, `armed(key)` being its owner's record
    /// (`None` when the owner is gone); stale entries on top are dropped.
    pub fn next_live(&mut self, armed: impl Fn(K) -> Option<Instant>) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if armed(key) == Some(at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }
}

impl<K: Ord + Copy> Default for TimerHeap<K> {
    fn default() -> TimerHeap<K> {
        TimerHeap::new()
    }
}

/// Whether an entry that came up at `at` is the live one its owner
/// recorded in `armed`; if so the owner is disarmed, for it to re-arm once
/// it has handled its timeout.
pub fn fired(armed: &mut Option<Instant>, at: Instant) -> bool {
    if *armed != Some(at) {
        return false;
    }
    *armed = None;
    true
}

/// Sleeps until `at`; with none, never wakes (the other branches of the
/// select loop do).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
