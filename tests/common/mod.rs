//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Root of the source tree.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Harness for every test that starts a ROS 2 participant.
///
/// Returns true when the caller is inside a loopback-only network namespace with
/// `ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST` and should run its body. Otherwise it runs this
/// very test again through `tests/netns.sh` (a fresh namespace per test, so parallel tests
/// cannot hear each other either), asserts that run passed, and returns false: the caller
/// returns without starting anything. `name` is the test's path within its test binary.
/// Inside the wrapper but not isolated (an interface besides lo), it refuses by panicking.
#[must_use]
pub fn ros_isolated(name: &str) -> bool {
    if altermoma::netns::is_isolated() {
        return true;
    }
    if std::env::var("ALTERMOMA_IN_NETNS").as_deref() == Ok("1") {
        panic!(
            "refusing to start a ROS 2 participant: {}",
            altermoma::netns::isolation_problem().unwrap_or_default()
        );
    }
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new(altermoma::netns::wrapper_path())
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .status()
        .expect("running tests/netns.sh");
    assert!(
        status.success(),
        "test {name} failed inside the network namespace ({status})"
    );
    false
}

/// A child process that is stopped when this goes out of scope (a test that fails before
/// stopping it included) as `ros2 launch` stops nodes: SIGINT, up to 10 s to exit, then
/// SIGKILL. A ROS 2 process that exits on SIGINT destroys its participants, which removes their
/// Fast DDS shared-memory segments from /dev/shm; a killed one leaves them there, and /dev/shm
/// is not private to the test's network namespace.
pub struct StopOnDrop(pub std::process::Child);

impl StopOnDrop {
    /// SIGINT, then wait up to `grace` for the exit; SIGKILL after that. The exit status, or
    /// None when the process had to be killed.
    pub fn interrupt(&mut self, grace: std::time::Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(st)) = self.0.try_wait() {
            return Some(st);
        }
        // SAFETY: a plain kill(2) on our own child, which has not been reaped (try_wait above)
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let t = std::time::Instant::now();
        while t.elapsed() < grace {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        None
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.interrupt(std::time::Duration::from_secs(10));
    }
}
