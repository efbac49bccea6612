//! Compute device selection: `auto`, `cpu`, `cuda` or `cuda:N`.

use anyhow::{bail, Result};
use tch::Device;

/// Parse a device string. `auto` picks CUDA device 0 when libtorch sees a GPU, else the CPU.
pub fn parse_device(spec: &str) -> Result<Device> {
    let s = spec.trim().to_ascii_lowercase();
    let dev = match s.as_str() {
        "cpu" => Device::Cpu,
        "auto" => {
            if cuda_available() {
                Device::Cuda(0)
            } else {
                Device::Cpu
            }
        }
        "cuda" | "gpu" => Device::Cuda(0),
        _ => match s.strip_prefix("cuda:") {
            Some(n) => match n.parse::<usize>() {
                Ok(i) => Device::Cuda(i),
                Err(_) => bail!("device `{spec}`: expected cuda:N with N a GPU index"),
            },
            None => bail!("device `{spec}`: expected auto, cpu, cuda or cuda:N"),
        },
    };
    if let Device::Cuda(i) = dev {
        if !cuda_available() {
            bail!(
                "device `{spec}`: CUDA is not available (libtorch without CUDA, no GPU, or a CPU-only \
                 build: see README, 'GPU')"
            );
        }
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            bail!("device `{spec}`: only {n} CUDA device(s) present");
        }
    }
    Ok(dev)
}

/// True when libtorch can use a CUDA device. When the binary was built without linking
/// libtorch_cuda (its CUDA libraries were missing at build time), this tries to load it first.
pub fn cuda_available() -> bool {
    load_torch_cuda();
    tch::Cuda::is_available()
}

/// Load libtorch_cuda at run time when the binary was built without linking it (its CUDA
/// libraries were missing at build time), so that a GPU present now can be used. The
/// binaries call this first thing in `main`: libtorch asks its CUDA hooks once, on the first
/// CUDA question (`is_available`, `manual_seed`, ...), and keeps the answer, so loading the
/// library after that question has been asked is too late (seen on an H200: the CPU-built
/// binary then said CUDA was not available). Returns whether libtorch_cuda is in the process.
pub fn load_torch_cuda() -> bool {
    if cfg!(altermoma_cuda_linked) {
        return true;
    }
    use std::sync::OnceLock;
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let name = std::ffi::CString::new("libtorch_cuda.so").expect("static name");
        // SAFETY: dlopen with a valid C string; the handle is intentionally kept for the
        // lifetime of the process (the CUDA hooks register themselves on load).
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        !handle.is_null()
    })
}

/// Human-readable device name for logs and diagnostics.
pub fn describe(dev: Device) -> String {
    match dev {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_auto() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        let auto = parse_device("auto").unwrap();
        assert!(auto == Device::Cpu || auto == Device::Cuda(0));
    }

    #[test]
    fn rejects_garbage_with_the_spec_in_the_message() {
        let e = parse_device("tpu:3").unwrap_err().to_string();
        assert!(e.contains("tpu:3"), "{e}");
        let e = parse_device("cuda:x").unwrap_err().to_string();
        assert!(e.contains("cuda:x"), "{e}");
    }

    #[test]
    fn cuda_request_without_gpu_is_a_clear_error() {
        if !cuda_available() {
            let e = parse_device("cuda:0").unwrap_err().to_string();
            assert!(e.contains("CUDA is not available"), "{e}");
        }
    }
}
