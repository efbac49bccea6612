//! [`LatestSlot`]: a one-element hand-over between a producer that must never block (the
//! ROS spin thread) and a consumer that may be slow (inference). A new item replaces one
//! that was not taken yet, and the replaced item is counted as dropped: the consumer always
//! gets the newest frame and nothing queues without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct LatestSlot<T> {
    state: Mutex<(Option<T>, bool)>,
    ready: Condvar,
    dropped: AtomicU64,
    put: AtomicU64,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LatestSlot<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new((None, false)),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
            put: AtomicU64::new(0),
        }
    }

    /// Offer an item; returns true when it replaced one that was never taken (a drop).
    pub fn put(&self, item: T) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = g.0.replace(item).is_some();
        drop(g);
        self.put.fetch_add(1, Ordering::Relaxed);
        if replaced {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
        replaced
    }

    /// Wait up to `timeout` for an item. None on timeout or when closed and empty.
    pub fn take(&self, timeout: Duration) -> Option<T> {
        let g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) =
            self.ready.wait_timeout_while(g, timeout, |s| s.0.is_none() && !s.1).unwrap_or_else(|e| e.into_inner());
        g.0.take()
    }

    /// Wake the consumer for good; later `take`s return what is left, then None at once.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.ready.notify_all();
    }

    /// True while an item waits to be taken.
    pub fn is_pending(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0.is_some()
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Items replaced before being taken, since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Items offered, since creation.
    pub fn offered(&self) -> u64 {
        self.put.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn newest_wins_and_drops_are_counted() {
        let s = LatestSlot::new();
        assert!(!s.put(1));
        assert!(s.put(2));
        assert!(s.put(3));
        assert_eq!(s.take(Duration::ZERO), Some(3));
        assert_eq!(s.take(Duration::from_millis(1)), None);
        assert_eq!((s.dropped(), s.offered()), (2, 3));
    }

    #[test]
    fn a_slow_consumer_sees_only_the_newest_and_nothing_is_lost_silently() {
        let s = Arc::new(LatestSlot::new());
        let c = {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(v) = s.take(Duration::from_secs(5)) {
                    got.push(v);
                    std::thread::sleep(Duration::from_millis(2));
                }
                got
            })
        };
        for k in 0..200u32 {
            s.put(k);
            if k % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // let the consumer take the last item, then stop it
        while s.is_pending() {
            std::thread::sleep(Duration::from_millis(1));
        }
        s.close();
        let got = c.join().unwrap();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
        assert_eq!(got.len() as u64 + s.dropped(), 200, "every item is either processed or counted as dropped");
        assert_eq!(*got.last().unwrap(), 199, "the newest item is processed");
    }
}
