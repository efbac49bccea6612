//! Link-time set-up the binaries need to start without hand-exported library paths:
//! - an rpath to libtorch (torch-sys exposes its lib dir as DEP_TCH_LIBTORCH_LIB);
//! - libtorch_cuda linked with --no-as-needed when the libtorch in use has a usable one,
//!   so `device: cuda` works (the linker's as-needed mode drops it otherwise);
//! - libpython linked explicitly when ROS 2 comes from PyPI wheels (librcl pulls
//!   *_rosidl_generator_py.so, which need libpython symbols), with an rpath to it;
//! - `cfg(altermoma_tf2_msgs)` when r2r will generate tf2_msgs (installed in a prefix of
//!   AMENT_PREFIX_PATH and let through IDL_PACKAGE_FILTER): the node then reads /tf_static;
//! - a clear error when the `vision_msgs` feature is on but r2r will not generate vision_msgs.
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
    if std::env::var("CARGO_FEATURE_ROS").is_ok() && ros_message_available("tf2_msgs", "TFMessage") {
        println!("cargo:rustc-cfg=altermoma_tf2_msgs");
    }
    // the `vision_msgs` feature needs the package; say so instead of r2r's missing-module error
    if std::env::var("CARGO_FEATURE_VISION_MSGS").is_ok() && !ros_message_available("vision_msgs", "Detection3DArray") {
        panic!(
            "the `vision_msgs` feature needs ROS 2's vision_msgs (Detection3DArray) in a prefix of \
             AMENT_PREFIX_PATH and in IDL_PACKAGE_FILTER when that is set: install it, or run \
             ./setup.sh (it builds a stand-in where vision_msgs is missing), or build without the feature"
        );
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

/// True when r2r generates bindings for message `pkg/msg/name`: the package is installed in a
/// prefix of AMENT_PREFIX_PATH and IDL_PACKAGE_FILTER (when set) lets it through, as r2r decides.
fn ros_message_available(pkg: &str, name: &str) -> bool {
    let filtered_in = match std::env::var("IDL_PACKAGE_FILTER") {
        Ok(f) => f.split(';').any(|p| p == pkg),
        Err(_) => true,
    };
    let installed = std::env::var("AMENT_PREFIX_PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|p| {
                let dir = p.join("share").join(pkg).join("msg");
                dir.join(format!("{name}.msg")).is_file() || dir.join(format!("{name}.idl")).is_file()
            })
        })
        .unwrap_or(false);
    filtered_in && installed
}
