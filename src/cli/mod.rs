//! The `altermoma` command line: one file per subcommand, each a thin layer over the library.
use clap::{Parser, Subcommand};

pub mod bench;
pub mod demo;
pub mod eval;
pub mod experiment;
pub mod finetune;
pub mod gen_bag;
pub mod gen_data;
pub mod infer;
pub mod latency;
pub mod play;
pub mod prune;
pub mod render;
pub mod replay;
pub mod train;

#[derive(Parser, Debug)]
#[command(
    name = "altermoma",
    version,
    about = "Train, prune (AlterMOMA), fine-tune, evaluate and replay BEVFusion-style camera-LiDAR fusion models",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a synthetic driving dataset in the nuScenes layout.
    GenData(gen_data::Args),
    /// Render a PNG montage of one sample (cameras with boxes, BEV with points and map).
    Render(render::Args),
    /// Train a camera-only, LiDAR-only or fused model.
    Train(train::Args),
    /// Run one sample through the per-frame pipeline; write detections JSON and a PNG.
    Infer(infer::Args),
    /// nuScenes detection metrics (mAP, TP errors, NDS) and BEV map mIoU.
    Eval(eval::Args),
    /// Prune a trained model (AlterMOMA, IMP, SNIP, SynFlow, ProsPr, random).
    Prune(prune::Args),
    /// Fine-tune a pruned model; pruned weights stay exactly zero.
    Finetune(finetune::Args),
    /// Run a whole pruning study from an experiment config and write its report.
    Experiment(experiment::Args),
    /// Write synthetic scenes as a rosbag2 (MCAP) bag.
    GenBag(gen_bag::Args),
    /// Run the node's per-frame pipeline over a rosbag2 bag; metrics and latency report.
    Replay(replay::Args),
    /// Publish a bag's topics on ROS 2 with the recorded timing.
    Play(play::Args),
    /// Compare dense and pruned models' latency on the same bag.
    Latency(latency::Args),
    /// Benchmarks (data, model, metrics, bag, node, pruning).
    Bench(bench::Args),
    /// The end-to-end demo: data, training, pruning, evaluation, bag replay, report.
    Demo(demo::Args),
}

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::GenData(a) => gen_data::run(a),
        Command::Render(a) => render::run(a),
        Command::Train(a) => train::run(a),
        Command::Infer(a) => infer::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Prune(a) => prune::run(a),
        Command::Finetune(a) => finetune::run(a),
        Command::Experiment(a) => experiment::run(a),
        Command::GenBag(a) => gen_bag::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Play(a) => play::run(a),
        Command::Latency(a) => latency::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Demo(a) => demo::run(a),
    }
}
