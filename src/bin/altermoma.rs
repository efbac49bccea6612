//! The offline CLI. All work lives in the library; see `altermoma::cli`.
use clap::Parser;

fn main() -> std::process::ExitCode {
    altermoma::logging::init();
    altermoma::host_memory::retain_freed_memory();
    // before anything asks libtorch about CUDA (see `load_torch_cuda`)
    altermoma::device::load_torch_cuda();
    let cli = altermoma::cli::Cli::parse();
    match altermoma::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
