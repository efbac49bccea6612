//! Link-time set-up the binaries need to start without hand-exported library paths:
//! - an rpath to libtorch (torch-sys exposes its lib dir as DEP_TCH_LIBTORCH_LIB);
//! - libtorch_cuda linked with --no-as-needed when the libtorch in use has a usable one,
//!   so `device: cuda` works (the linker's as-needed mode drops it otherwise);
//! - libpython linked explicitly when ROS 2 comes from PyPI wheels (librcl pulls
//!   *_rosidl_generator_py.so, which need libpython symbols), with an rpath to it;
//! - `cfg(altermoma_tf2_msgs)` when r2r will generate tf2_msgs (installed in a prefix of
//!   AMENT_PREFIX_PATH and let through IDL_PACKAGE_FILTER): the node then reads /tf_static.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for v in [
        "ALTERMOMA_CUDA",
        "ALTERMOMA_PYTHON_LIBDIR",
        "ALTERMOMA_PYTHON_LIB",
        "LIBTORCH",
        "AMENT_PREFIX_PATH",
        "IDL_PACKAGE_FILTER",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }

    let torch_lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok();
    if let Some(lib) = &torch_lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        let cuda = Path::new(lib).join("libtorch_cuda.so");
        let forced = std::env::var("CARGO_FEATURE_CUDA").is_ok()
            || std::env::var("ALTERMOMA_CUDA")
                .map(|v| v == "1")
                .unwrap_or(false);
        let disabled = std::env::var("ALTERMOMA_CUDA")
            .map(|v| v == "0")
            .unwrap_or(false);
        if cuda.exists() && !disabled && (forced || cuda_resolves(&cuda)) {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
            println!("cargo:rustc-cfg=altermoma_cuda_linked");
        } else if cuda.exists() && !disabled {
            println!(
                "cargo:warning=libtorch has libtorch_cuda.so but its CUDA libraries are not \
                 installed here: building CPU-only (set ALTERMOMA_CUDA=1 to force)"
            );
        }
    }
    println!("cargo::rustc-check-cfg=cfg(altermoma_cuda_linked)");
    println!("cargo::rustc-check-cfg=cfg(altermoma_tf2_msgs)");
    if std::env::var("CARGO_FEATURE_ROS").is_ok() && tf2_msgs_available() {
        println!("cargo:rustc-cfg=altermoma_tf2_msgs");
    }

    if std::env::var("CARGO_FEATURE_ROS").is_ok() {
        if let (Ok(dir), Ok(name)) = (
            std::env::var("ALTERMOMA_PYTHON_LIBDIR"),
            std::env::var("ALTERMOMA_PYTHON_LIB"),
        ) {
            println!("cargo:rustc-link-search=native={dir}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-l{name},--as-needed");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}

/// True when every library libtorch_cuda.so needs can be found (ldd reports none missing).
fn cuda_resolves(lib: &Path) -> bool {
    match Command::new("ldd").arg(lib).output() {
        Ok(out) => {
            out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("not found")
        }
        Err(_) => false,
    }
}

/// True when r2r generates bindings for tf2_msgs: the package is installed in a prefix of
/// AMENT_PREFIX_PATH and IDL_PACKAGE_FILTER (when set) lets it through, as r2r decides.
fn tf2_msgs_available() -> bool {
    let filtered_in = match std::env::var("IDL_PACKAGE_FILTER") {
        Ok(f) => f.split(';').any(|p| p == "tf2_msgs"),
        Err(_) => true,
    };
    let installed = std::env::var("AMENT_PREFIX_PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .any(|p| p.join("share/tf2_msgs/msg/TFMessage.msg").is_file()
                    || p.join("share/tf2_msgs/msg/TFMessage.idl").is_file())
        })
        .unwrap_or(false);
    filtered_in && installed
}
