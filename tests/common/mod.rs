//! Shared by the integration tests: the tiny diffusers fixture converted once per test binary, and
//! golden tensors captured from the real diffusers pipeline.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use unclip::backend::cpu::Cpu;
use unclip::backend::{Backend, Tensor};
use unclip::convert::convert;
use unclip::gguf::GgmlType;
use unclip::manifest::open_model_dir;
use unclip::UnCLIPPipeline;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The tiny checkpoint converted to `dtype` (once per process), in a temp dir.
pub fn tiny_model(dtype: GgmlType) -> PathBuf {
    static DIRS: OnceLock<std::sync::Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let mut dirs = dirs.lock().unwrap();
    dirs.entry(format!("{dtype:?}"))
        .or_insert_with(|| {
            let out = std::env::temp_dir().join(format!("unclip-test-{}-{dtype:?}", std::process::id()));
            convert(&fixtures().join("tiny-unclip"), &out, dtype, |_| {}).expect("the tiny fixture converts");
            out
        })
        .clone()
}

pub fn tiny_pipeline(dtype: GgmlType) -> UnCLIPPipeline<Cpu> {
    let (manifest, open) = open_model_dir(&tiny_model(dtype)).unwrap();
    UnCLIPPipeline::load(&Cpu, manifest, open).unwrap()
}

/// A tensor read from a golden file, as f32 (bools and ints converted), with its shape.
pub struct G {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

impl G {
    pub fn cpu(&self) -> <Cpu as Backend>::Tensor {
        Cpu.tensor(self.data.clone(), &self.shape).unwrap()
    }
    pub fn bools(&self) -> Vec<bool> {
        self.data.iter().map(|&v| v != 0.0).collect()
    }
    pub fn ids(&self) -> Vec<u32> {
        self.data.iter().map(|&v| v as u32).collect()
    }
    pub fn scalar(&self) -> usize {
        self.data[0] as usize
    }
}

pub struct Golden(HashMap<String, G>);

impl Golden {
    pub fn open(name: &str) -> Golden {
        Golden::open_at(&fixtures().join("golden").join(name))
    }

    pub fn open_at(path: &Path) -> Golden {
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut map = HashMap::new();
        for (k, v) in st.tensors() {
            let d = v.data();
            let data: Vec<f32> = match v.dtype() {
                safetensors::Dtype::F32 => {
                    d.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
                }
                safetensors::Dtype::I64 => {
                    d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect()
                }
                safetensors::Dtype::BOOL => d.iter().map(|&b| b as f32).collect(),
                other => panic!("unexpected dtype {other:?} for {k}"),
            };
            map.insert(k, G { data, shape: v.shape().to_vec() });
        }
        Golden(map)
    }

    pub fn get(&self, key: &str) -> &G {
        self.0.get(key).unwrap_or_else(|| panic!("golden has no {key}"))
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

/// max |a − b| after checking the shapes.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn host<T: Tensor>(t: &T) -> Vec<f32> {
    pollster::block_on(t.to_vec()).unwrap()
}

/// The string metadata a golden file's generator stored (prompts, diffusers' warnings).
pub fn golden_metadata(name: &str) -> HashMap<String, String> {
    let bytes = std::fs::read(fixtures().join("golden").join(name)).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().clone().unwrap_or_default()
}

/// A recursive copy of a folder (a checkpoint to damage).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the tiny diffusers folder, changed by `edit`, converted (f32) and loaded on the CPU.
pub fn converted_variant(tag: &str, edit: impl Fn(&Path)) -> UnCLIPPipeline<Cpu> {
    let dir = std::env::temp_dir().join(format!("unclip-variant-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixtures().join("tiny-unclip"), &dir.join("diffusers"));
    edit(&dir.join("diffusers"));
    convert(&dir.join("diffusers"), &dir.join("model"), GgmlType::F32, |_| {}).unwrap();
    let (m, open) = open_model_dir(&dir.join("model")).unwrap();
    UnCLIPPipeline::load(&Cpu, m, open).unwrap()
}

/// Sets `prediction_type` in a diffusers folder's decoder and super-res scheduler configs (x0-predicting models).
pub fn predicting(prediction_type: &'static str) -> impl Fn(&Path) {
    move |d: &Path| {
        for name in ["decoder_scheduler", "super_res_scheduler"] {
            let path = d.join(name).join("scheduler_config.json");
            let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            config["prediction_type"] = prediction_type.into();
            std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        }
    }
}
