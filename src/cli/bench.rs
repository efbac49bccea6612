//! `altermoma bench <target>`: benchmarks measured side by side in one run and printed as
//! tables (speed targets are ratios, never timed assertions in tests).
use clap::Subcommand;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Subcommand, Debug)]
pub enum Target {
    /// Synthetic frames per second and loader throughput (issue #3).
    Data(crate::bench::data::Args),
    /// Per-stage forward time and GFLOPs per model config (issue #4).
    Model(crate::bench::model::Args),
    /// Our evaluation vs nuscenes-devkit on the same input (issue #5).
    Metrics(crate::bench::metrics::Args),
    /// Pruning score cost and structured speed-up (issue #6).
    Pruning(crate::bench::pruning::Args),
    /// Node pipeline latency, overhead share and memory (issue #7).
    Node(crate::bench::node::Args),
    /// Bag decoding throughput vs rosbags (issue #8).
    Bag(crate::bench::bag::Args),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.target {
        Target::Data(a) => crate::bench::data::run(a),
        Target::Model(a) => crate::bench::model::run(a),
        Target::Metrics(a) => crate::bench::metrics::run(a),
        Target::Pruning(a) => crate::bench::pruning::run(a),
        Target::Node(a) => crate::bench::node::run(a),
        Target::Bag(a) => crate::bench::bag::run(a),
    }
}
