//! The demo's step machinery (`altermoma::demo::steps`): finished steps are reused, a changed
//! setting reruns that step and those after it, and an interrupted run (an error mid-step,
//! or the process killed mid-step as by Ctrl-C) leaves no corrupt output: the re-run
//! continues and ends with complete files.

use altermoma::demo::steps::{StepStatus, Steps};
use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

/// A fake step: writes `out.txt` (content derived from its input) into its folder.
fn write_out(dir: &Path, text: &str) -> anyhow::Result<String> {
    altermoma::io::atomic_write(dir.join("out.txt"), text.as_bytes())?;
    Ok(text.to_string())
}

fn statuses(s: &Steps) -> Vec<StepStatus> {
    s.records.iter().map(|r| r.status).collect()
}

#[test]
fn finished_steps_are_reused_and_a_changed_setting_reruns_it_and_the_later_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let run = |b_setting: u32| -> (Vec<StepStatus>, Vec<String>) {
        let mut s = Steps::new(tmp.path(), 3, "test").unwrap();
        s.verbose = false;
        let a = s
            .run("a", &1, |d| {
                calls.set(calls.get() + 1);
                write_out(&d.path, "A")
            })
            .unwrap();
        let b = s
            .run("b", &b_setting, |d| {
                calls.set(calls.get() + 1);
                write_out(&d.path, &format!("{a}B{b_setting}"))
            })
            .unwrap();
        let c = s
            .run("c", &3, |d| {
                calls.set(calls.get() + 1);
                write_out(&d.path, &format!("{b}C"))
            })
            .unwrap();
        (statuses(&s), vec![a, b, c])
    };
    let (st, r) = run(2);
    assert_eq!(st, vec![StepStatus::Computed; 3]);
    assert_eq!(r, vec!["A", "AB2", "AB2C"]);
    assert_eq!(calls.get(), 3);
    // Same settings: nothing runs, the results come back from the stamps.
    let (st, r2) = run(2);
    assert_eq!(st, vec![StepStatus::Reused; 3]);
    assert_eq!(r2, r);
    assert_eq!(calls.get(), 3);
    // b's setting changed: a reused, b and c computed again.
    let (st, r3) = run(5);
    assert_eq!(
        st,
        vec![
            StepStatus::Reused,
            StepStatus::Computed,
            StepStatus::Computed
        ]
    );
    assert_eq!(r3, vec!["A", "AB5", "AB5C"]);
    assert_eq!(calls.get(), 5);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("c/out.txt")).unwrap(),
        "AB5C"
    );
    // A deleted step folder or a corrupt stamp is not trusted.
    std::fs::remove_dir_all(tmp.path().join("c")).unwrap();
    std::fs::write(tmp.path().join(".done/a.json"), b"{\"step\": ").unwrap();
    let (st, _) = run(5);
    assert_eq!(
        st,
        vec![
            StepStatus::Computed,
            StepStatus::Reused,
            StepStatus::Computed
        ]
    );
    assert_eq!(calls.get(), 7);
}

#[test]
fn an_error_mid_step_leaves_no_output_and_the_rerun_continues_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Steps::new(tmp.path(), 2, "test").unwrap();
    s.verbose = false;
    s.run("a", &1, |d| write_out(&d.path, "A")).unwrap();
    let err = s
        .run("b", &1, |d| -> anyhow::Result<String> {
            // Half of the work done (an atomic checkpoint), then the interruption.
            write_out(&d.path, "half")?;
            std::fs::write(d.path.join("final.txt"), b"trunc").unwrap();
            anyhow::bail!("interrupted")
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("demo step `b`"), "{err:#}");
    // Nothing of b is published; a is intact.
    assert!(!tmp.path().join("b").exists());
    assert!(!tmp.path().join(".done/b.json").exists());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("a/out.txt")).unwrap(),
        "A"
    );
    // Re-run: a reused, b handed its staging folder back and finished.
    let mut s = Steps::new(tmp.path(), 2, "test").unwrap();
    s.verbose = false;
    s.run("a", &1, |_| -> anyhow::Result<String> {
        panic!("a is finished and must not run again")
    })
    .unwrap();
    let seen = s
        .run("b", &1, |d| {
            assert!(d.resumed, "the interrupted step's folder is handed back");
            let half = std::fs::read_to_string(d.path.join("out.txt"))?;
            std::fs::write(d.path.join("final.txt"), b"complete")?;
            write_out(&d.path, &format!("{half}+rest"))
        })
        .unwrap();
    assert_eq!(seen, "half+rest");
    assert_eq!(statuses(&s), vec![StepStatus::Reused, StepStatus::Resumed]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("b/final.txt")).unwrap(),
        "complete"
    );
    // No staging folder is left behind.
    let left: Vec<_> = std::fs::read_dir(tmp.path().join(".partial"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

const CHILD_ENV: &str = "ALTERMOMA_DEMO_STEPS_CHILD";

/// Runs only as the child of `a_killed_run_resumes_without_corrupt_files`: step `a`
/// finishes, step `b` writes half of its output and then hangs until killed.
#[test]
fn child_killed_mid_step() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut s = Steps::new(&dir, 2, "test").unwrap();
    s.run("a", &1, |d| write_out(&d.path, "A")).unwrap();
    s.run("b", &1, |d| -> anyhow::Result<String> {
        write_out(&d.path, "half")?;
        std::fs::write(d.path.join("big.bin"), vec![7u8; 1 << 20])?;
        std::fs::write(d.path.join("started"), b"")?;
        std::thread::sleep(Duration::from_secs(120));
        unreachable!("killed before")
    })
    .unwrap();
}

#[test]
fn a_killed_run_resumes_without_corrupt_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_killed_mid_step", "--nocapture"])
        .env(CHILD_ENV, tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let started = loop {
        let found = std::fs::read_dir(tmp.path().join(".partial"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("started").exists());
        if found || t0.elapsed() > Duration::from_secs(60) {
            break found;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the child ended before it was killed: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "the child never reached the middle of step b");
    assert!(!tmp.path().join("b").exists());
    assert!(!tmp.path().join(".done/b.json").exists());
    // Re-run: a is reused, b continues in its folder and publishes complete files.
    let mut s = Steps::new(tmp.path(), 2, "test").unwrap();
    s.verbose = false;
    let a = s
        .run("a", &1, |_| -> anyhow::Result<String> {
            panic!("a must be reused")
        })
        .unwrap();
    assert_eq!(a, "A");
    let b = s
        .run("b", &1, |d| {
            assert!(d.resumed);
            assert_eq!(std::fs::read_to_string(d.path.join("out.txt"))?, "half");
            std::fs::write(d.path.join("big.bin"), vec![9u8; 1 << 20])?;
            write_out(&d.path, "whole")
        })
        .unwrap();
    assert_eq!(b, "whole");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("b/out.txt")).unwrap(),
        "whole"
    );
    assert!(std::fs::read(tmp.path().join("b/big.bin"))
        .unwrap()
        .iter()
        .all(|&x| x == 9));
    // And a third run reuses both.
    let mut s = Steps::new(tmp.path(), 2, "test").unwrap();
    s.verbose = false;
    s.run("a", &1, |_| -> anyhow::Result<String> { panic!() })
        .unwrap();
    s.run("b", &1, |_| -> anyhow::Result<String> { panic!() })
        .unwrap();
    assert_eq!(statuses(&s), vec![StepStatus::Reused; 2]);
}
