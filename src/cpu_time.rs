//! CPU time of threads: the calling thread's own clock (`CLOCK_THREAD_CPUTIME_ID`), which
//! the node uses to charge the work of its receiving thread to the frames, and every thread
//! of this process as the kernel accounts it (`/proc/self/task/*/schedstat`), which `bench
//! node` uses to show where the CPU goes (inference, receiving, DDS, the publisher).
//!
//! CPU time, not wall time: a thread that waits (for messages, for a lock) is not charged.

use std::collections::HashMap;

/// CPU time the calling thread has used since it started, in milliseconds.
pub fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 * 1e-6
}

/// One thread of this process: its name (`comm`, 15 characters at most) and the CPU time it
/// has used, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadCpu {
    pub name: String,
    pub cpu_ms: f64,
}

/// Every live thread of this process by thread id (empty where `/proc` is not readable).
pub fn process_threads() -> HashMap<u32, ThreadCpu> {
    threads_in("/proc/self/task")
}

/// Every live thread of process `pid` (e.g. a child) by thread id (empty where its `/proc`
/// entry is not readable, or once it has ended).
pub fn threads_of(pid: u32) -> HashMap<u32, ThreadCpu> {
    threads_in(&format!("/proc/{pid}/task"))
}

fn threads_in(task_dir: &str) -> HashMap<u32, ThreadCpu> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(task_dir) else { return out };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default().trim_end().to_string();
        // schedstat: time on the CPU (ns), time waiting to run (ns), time slices
        let ns = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()));
        if let Some(ns) = ns {
            out.insert(tid, ThreadCpu { name, cpu_ms: ns * 1e-6 });
        }
    }
    out
}

/// CPU time (ms) each group of threads used between two [`process_threads`] snapshots,
/// grouped by `group(name)` (threads that started in between count from zero; threads that
/// ended in between are not seen). Sorted by CPU time, most first.
pub fn cpu_between(
    before: &HashMap<u32, ThreadCpu>,
    after: &HashMap<u32, ThreadCpu>,
    group: impl Fn(&str) -> String,
) -> Vec<(String, f64)> {
    let mut by: HashMap<String, f64> = HashMap::new();
    for (tid, t) in after {
        let start = before.get(tid).filter(|b| b.name == t.name).map_or(0.0, |b| b.cpu_ms);
        *by.entry(group(&t.name)).or_default() += (t.cpu_ms - start).max(0.0);
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn spin_for(d: Duration) -> u64 {
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < d {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        x
    }

    #[test]
    fn a_busy_thread_is_charged_and_a_sleeping_one_is_not() {
        let c0 = thread_cpu_ms();
        std::thread::sleep(Duration::from_millis(60));
        let slept = thread_cpu_ms() - c0;
        let c1 = thread_cpu_ms();
        spin_for(Duration::from_millis(60));
        let busy = thread_cpu_ms() - c1;
        assert!(slept < 20.0, "sleeping 60 ms cost {slept} ms of CPU");
        // on a loaded machine the thread may not run all the time it spins
        assert!(busy > 15.0 && busy < 200.0, "spinning 60 ms cost {busy} ms of CPU");
    }

    #[test]
    fn threads_are_seen_by_name_and_grouped() {
        let before = process_threads();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::Builder::new()
            .name("cpu-time-test".into())
            .spawn(move || {
                spin_for(Duration::from_millis(50));
                let _ = done_tx.send(());
                // stay alive (and idle) until the snapshot is taken
                let _ = stop_rx.recv();
            })
            .unwrap();
        done_rx.recv().unwrap();
        let after = process_threads();
        stop_tx.send(()).unwrap();
        h.join().unwrap();
        let by = cpu_between(&before, &after, |n| if n == "cpu-time-test" { "test".into() } else { "other".into() });
        let test = by.iter().find(|(g, _)| g == "test").map_or(0.0, |g| g.1);
        assert!(test > 10.0 && test < 1000.0, "the spinning thread was charged {test} ms: {by:?}");
        assert_eq!(by.len(), 2, "{by:?}");
        assert!(by.windows(2).all(|w| w[0].1 >= w[1].1), "not sorted: {by:?}");
    }

    #[test]
    fn another_process_is_seen_by_its_pid() {
        let mut child = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        let pid = child.id();
        let t = Instant::now();
        let mut seen = threads_of(pid);
        while seen.values().map(|t| t.cpu_ms).sum::<f64>() <= 0.0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            seen = threads_of(pid);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let t = seen.values().next().unwrap();
        assert_eq!(t.name, "sh");
        assert!(t.cpu_ms > 0.0, "a busy child is charged: {t:?}");
        assert!(threads_of(pid).is_empty(), "an ended process has no threads");
    }
}
