//! Checkpoints: safetensors files with the model configuration and training metadata
//! embedded in the header's `__metadata__`, written atomically.
//!
//! Metadata is a string map; by convention `model_config` holds the model config as JSON,
//! `kind` says what the file is (`dense`, `masked`, `structured`, `training_state`), and
//! other components add their own keys (`train_meta`, `pruning`, ...). Masks of a masked
//! checkpoint are stored as tensors named `__mask__.<param>`.

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

/// Prefix of mask tensors in masked checkpoints.
pub const MASK_PREFIX: &str = "__mask__.";

/// Tensors (kept on the CPU) and metadata of one checkpoint file.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn kind_to_dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => bail!("tensor kind {other:?} cannot be stored in a checkpoint"),
    })
}

fn dtype_to_kind(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        other => bail!("unsupported safetensors dtype {other:?}"),
    })
}

fn to_bytes(t: &Tensor) -> Result<TensorBytes> {
    let t = t.detach().to_device(tch::Device::Cpu).contiguous();
    let dtype = kind_to_dtype(t.kind())?;
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let numel: usize = shape.iter().product();
    let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    if numel > 0 {
        t.copy_data_u8(&mut bytes, numel);
    }
    Ok(TensorBytes {
        dtype,
        shape,
        bytes,
    })
}

impl Checkpoint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Write atomically to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut prepared = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            prepared.push((
                name.clone(),
                to_bytes(t).with_context(|| format!("tensor {name}"))?,
            ));
        }
        let meta: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let bytes =
            safetensors::serialize(prepared.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
                .with_context(|| format!("serialising checkpoint {}", path.display()))?;
        crate::io::atomic_write(path, &bytes)
    }

    /// Read a checkpoint; errors name the file and, for a bad tensor, the tensor.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening checkpoint {}", path.display()))?;
        // SAFETY: the file is opened read-only and not modified while mapped by this process.
        let mmap = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping checkpoint {}", path.display()))?;
        let st = SafeTensors::deserialize(&mmap).map_err(|e| {
            anyhow::anyhow!("{}: not a valid safetensors file: {e}", path.display())
        })?;
        let (_, header) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| anyhow::anyhow!("{}: bad safetensors header: {e}", path.display()))?;
        let metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let kind = dtype_to_kind(view.dtype())
                .with_context(|| format!("{}: tensor {name}", path.display()))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::from_data_size(view.data(), &shape, kind);
            tensors.insert(name, t);
        }
        Ok(Self { tensors, metadata })
    }

    /// Metadata value or an error naming the file's missing key.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("checkpoint has no `{key}` metadata"))
    }

    /// Copy every variable of `vs` into the checkpoint (names as in the VarStore).
    pub fn insert_var_store(&mut self, vs: &tch::nn::VarStore) {
        for (name, t) in vs.variables() {
            self.tensors
                .insert(name, t.detach().to_device(tch::Device::Cpu));
        }
    }

    /// Copy the checkpoint's tensors into the variables of `vs`. Every variable must be
    /// present with the same shape; extra tensors are an error unless their names start with
    /// one of `ignore_prefixes` (masks, optimiser state, ...).
    pub fn load_into_var_store(
        &self,
        vs: &mut tch::nn::VarStore,
        ignore_prefixes: &[&str],
    ) -> Result<()> {
        let vars = vs.variables();
        // Sorted, so the error is the same on every run (the var store is a hash map).
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let mut mismatches = Vec::new();
        for name in names {
            let var = &vars[name];
            let src = self
                .tensors
                .get(name)
                .with_context(|| format!("checkpoint lacks parameter `{name}`"))?;
            if src.size() != var.size() {
                mismatches.push(format!(
                    "`{name}`: checkpoint shape {:?}, model {:?}",
                    src.size(),
                    var.size()
                ));
            }
        }
        if !mismatches.is_empty() {
            const SHOWN: usize = 12;
            let more = mismatches.len().saturating_sub(SHOWN);
            bail!(
                "{} parameter(s) do not match the model's shapes (wrong model config?): {}{}",
                mismatches.len(),
                mismatches[..mismatches.len().min(SHOWN)].join("; "),
                if more > 0 { format!("; and {more} more") } else { String::new() }
            );
        }
        let mut extra: Vec<&String> = self.tensors.keys().collect();
        extra.sort();
        for name in extra {
            if !vars.contains_key(name) && !ignore_prefixes.iter().any(|p| name.starts_with(p)) {
                bail!("checkpoint tensor `{name}` has no parameter of that name in the model");
            }
        }
        tch::no_grad(|| {
            for (name, mut var) in vars {
                let src = &self.tensors[&name];
                var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
            }
        });
        Ok(())
    }

    /// Masks stored in the checkpoint, keyed by parameter name.
    pub fn masks(&self) -> BTreeMap<String, Tensor> {
        self.tensors
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(MASK_PREFIX)
                    .map(|p| (p.to_string(), t.shallow_clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    #[test]
    fn round_trip_is_exact_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let mut c = Checkpoint::new();
        let a = Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu));
        c.tensors.insert("a".into(), a.shallow_clone());
        c.tensors
            .insert("i".into(), Tensor::from_slice(&[1i64, -2, 3]));
        c.tensors
            .insert(format!("{MASK_PREFIX}a"), a.gt(0.0).to_kind(Kind::Uint8));
        c.metadata.insert("kind".into(), "masked".into());
        c.save(&p).unwrap();
        let d = Checkpoint::load(&p).unwrap();
        assert!(d.tensors["a"].equal(&a));
        assert_eq!(
            Vec::<i64>::try_from(&d.tensors["i"]).unwrap(),
            vec![1, -2, 3]
        );
        assert_eq!(d.meta("kind").unwrap(), "masked");
        assert_eq!(d.masks().len(), 1);
        assert!(d.meta("nope").is_err());
    }

    #[test]
    fn var_store_round_trip_and_shape_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _l = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        let mut c = Checkpoint::new();
        c.insert_var_store(&vs);
        c.save(&p).unwrap();

        let mut vs2 = nn::VarStore::new(tch::Device::Cpu);
        let _l2 = nn::linear(vs2.root() / "fc", 3, 2, Default::default());
        Checkpoint::load(&p)
            .unwrap()
            .load_into_var_store(&mut vs2, &[])
            .unwrap();
        assert!(vs.variables()["fc.weight"].equal(&vs2.variables()["fc.weight"]));

        let mut vs3 = nn::VarStore::new(tch::Device::Cpu);
        let _l3 = nn::linear(vs3.root() / "fc", 4, 2, Default::default());
        let e = Checkpoint::load(&p)
            .unwrap()
            .load_into_var_store(&mut vs3, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("fc.weight") && e.contains("shape"), "{e}");
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, b"not a checkpoint at all").unwrap();
        let e = Checkpoint::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.safetensors"), "{e}");
    }
}
