//! Progress bars for long work (indicatif). Hidden when stderr is not a terminal unless
//! `ALTERMOMA_PROGRESS=1`, so logs of CI and tests stay readable.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar over `len` steps with a message slot (loss, metric) and ETA.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let visible = std::io::stderr().is_terminal()
        || std::env::var("ALTERMOMA_PROGRESS").as_deref() == Ok("1");
    if !visible {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>12.cyan.bold} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}
