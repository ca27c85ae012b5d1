//! The device side of the WebGPU backend: adapter and device, compiled kernels, a pool of activation
//! buffers, batched command recording, and the one way data comes back (an async buffer map).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use wgpu::util::DeviceExt;

use super::shader::Shader;
use crate::error::{Error, Result};

/// One kernel launch: shader, entry point and its override constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: &'static Shader,
    pub entry: &'static str,
    /// (name, value) pairs of WGSL `override` constants.
    pub constants: [(&'static str, u32); 3],
}

impl Kernel {
    pub const fn new(shader: &'static Shader, entry: &'static str) -> Self {
        Kernel { shader, entry, constants: [("", 0); 3] }
    }

    pub const fn with(shader: &'static Shader, entry: &'static str, constants: [(&'static str, u32); 3]) -> Self {
        Kernel { shader, entry, constants }
    }
}

/// What people and the runtime choice need to know about the adapter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// A CPU implementation (lavapipe, SwiftShader, WARP): correct, but slower than the CPU backend.
    pub software: bool,
}

/// GPU memory this device has allocated, in bytes (buffers are pooled, never freed while it lives).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct GpuMemory {
    pub weights: u64,
    pub activations: u64,
    pub largest_weight: u64,
    pub largest_activation: u64,
}

/// Dispatches recorded before a submit; a readback submits at once.
const DISPATCHES_PER_SUBMIT: usize = 64;
/// Bytes of uniform parameters per dispatch: each kernel's `Params` at its own 256-byte-aligned offset
/// (the default `minUniformBufferOffsetAlignment`) of the batch's one uniform buffer.
const PARAMS_SLOT: usize = 256;

/// Dispatches being recorded: one command encoder, one compute pass, and one uniform buffer whose
/// contents (`params`, a slot per dispatch) are written just before the submit.
struct Batch {
    encoder: wgpu::CommandEncoder,
    pass: wgpu::ComputePass<'static>,
    uniforms: wgpu::Buffer,
    params: Vec<u8>,
}

/// Buffer usage of every tensor and weight buffer.
pub const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

pub struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// Most workgroups per dispatch dimension (the device limit; lowered in tests to exercise splitting).
    pub max_groups_per_dim: u32,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
    /// Compiled shader modules by [`Shader::name`].
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    /// Free activation buffers by size in bytes.
    pool: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    pending: Mutex<Option<Batch>>,
    /// The first device error or loss, reported by the next op.
    failure: Arc<Mutex<Option<String>>>,
    memory: Mutex<GpuMemory>,
    /// When profiling (native only): per kernel, (dispatches, wall milliseconds), each dispatch submitted and
    /// waited for on its own.
    pub profile: Option<Mutex<BTreeMap<String, (usize, f64)>>>,
}

impl Context {
    /// Asks for a high-performance adapter and a device with the default WebGPU limits.
    pub async fn new() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::Device(format!(
                    "no WebGPU adapter was found ({e}); use the CPU backend, or install a Vulkan driver (e.g. mesa-vulkan-drivers)"
                ))
            })?;
        let info = adapter.get_info();
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: format!("{:?}", info.device_type),
            software: info.device_type == wgpu::DeviceType::Cpu,
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("unclip"),
                required_features: wgpu::Features::empty(),
                required_limits: wgpu::Limits::default(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device(format!("the WebGPU adapter `{}` refused a device: {e}", summary.name)))?;
        let failure = Arc::new(Mutex::new(None));
        let on_error = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            on_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| e.to_string());
        }));
        let on_lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            on_lost
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| format!("the GPU device was lost ({reason:?}: {message})"));
        });
        let max_groups_per_dim = device.limits().max_compute_workgroups_per_dimension;
        Ok(Context {
            device,
            queue,
            adapter: summary,
            max_groups_per_dim,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            pool: Mutex::new(HashMap::new()),
            pending: Mutex::new(None),
            failure,
            memory: Mutex::new(GpuMemory::default()),
            profile: None,
        })
    }

    /// The first device error or loss since the device was made, as an error.
    pub fn check(&self) -> Result<()> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some(msg) => Err(Error::Device(format!("WebGPU failed: {msg}; switch to the CPU backend"))),
        }
    }

    fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipelines.get(&kernel) {
            return p.clone();
        }
        let module = self.module(kernel.shader);
        let constants: Vec<(&str, f64)> =
            kernel.constants.iter().filter(|(k, _)| !k.is_empty()).map(|&(k, v)| (k, v as f64)).collect();
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: None,
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        pipelines.insert(kernel, pipeline.clone());
        pipeline
    }

    /// `shader`'s module, compiled on first use.
    pub fn module(&self, shader: &Shader) -> wgpu::ShaderModule {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        modules
            .entry(shader.name)
            .or_insert_with(|| {
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.name),
                    source: wgpu::ShaderSource::Wgsl(shader.module_source().into()),
                })
            })
            .clone()
    }

    /// A buffer of at least `bytes` (≥ 4) from the pool, or a new one.
    pub fn buffer(&self, bytes: u64) -> wgpu::Buffer {
        let size = bucket(bytes);
        if let Some(b) = self.pool.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&size).and_then(Vec::pop) {
            return b;
        }
        self.count(size, false);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: STORAGE,
            mapped_at_creation: false,
        })
    }

    fn count(&self, bytes: u64, weight: bool) {
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if weight {
            m.weights += bytes;
            m.largest_weight = m.largest_weight.max(bytes);
        } else {
            m.activations += bytes;
            m.largest_activation = m.largest_activation.max(bytes);
        }
    }

    pub fn memory(&self) -> GpuMemory {
        *self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns a buffer to the pool. Commands already recorded that read it run before any later writer.
    pub fn recycle(&self, buffer: wgpu::Buffer) {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).entry(buffer.size()).or_default().push(buffer);
    }

    /// A buffer holding `data` (zero-padded to whole words), written at creation; `weight` says which
    /// memory total it counts towards.
    pub fn upload(&self, data: &[u8], weight: bool) -> wgpu::Buffer {
        let mut bytes = data.to_vec();
        bytes.resize(data.len().max(4).next_multiple_of(4), 0);
        self.count(bytes.len() as u64, weight);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: &bytes,
            usage: STORAGE,
        })
    }

    /// Records one launch of `groups` workgroups (numbered linearly; spread over x and y so neither
    /// exceeds the per-dimension limit). `buffers[i]` is bound at binding i + 1; binding 0 is `params`.
    pub fn dispatch(&self, kernel: Kernel, params: &[u8], buffers: &[&wgpu::Buffer], groups: usize) -> Result<()> {
        self.check()?;
        if groups == 0 {
            return Ok(());
        }
        let max = self.max_groups_per_dim as usize;
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::Device(format!(
                "`{}` needs {groups} workgroups, more than this GPU can launch ({max}²); use a smaller image or batch",
                kernel.entry
            )));
        }
        if params.len() > PARAMS_SLOT {
            return Err(Error::Device(format!(
                "`{}` has {} bytes of parameters, over {PARAMS_SLOT}",
                kernel.entry,
                params.len()
            )));
        }
        let pipeline = self.pipeline(kernel);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let batch = pending.get_or_insert_with(|| self.batch());
        let offset = batch.params.len();
        batch.params.extend_from_slice(params);
        batch.params.resize(offset + PARAMS_SLOT, 0);
        let uniform = wgpu::BufferBinding {
            buffer: &batch.uniforms,
            offset: offset as u64,
            size: wgpu::BufferSize::new(params.len() as u64),
        };
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(uniform) }];
        entries.extend(
            buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
        );
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        batch.pass.set_pipeline(&pipeline);
        batch.pass.set_bind_group(0, &bind_group, &[]);
        batch.pass.dispatch_workgroups(x as u32, y as u32, 1);
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(profile) = &self.profile {
            let start = crate::time::now_ms();
            self.submit(pending.take(), None);
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| {
                Error::Device(format!("WebGPU failed: waiting for the GPU failed ({e}); switch to the CPU backend"))
            })?;
            let ms = crate::time::now_ms() - start;
            let constants: String =
                kernel.constants.iter().filter(|(k, _)| !k.is_empty()).map(|(k, v)| format!(" {k}={v}")).collect();
            let mut profile = profile.lock().unwrap_or_else(|p| p.into_inner());
            let entry = profile.entry(format!("{} {}{constants}", kernel.shader.name, kernel.entry)).or_default();
            *entry = (entry.0 + 1, entry.1 + ms);
            return Ok(());
        }
        if batch.params.len() == DISPATCHES_PER_SUBMIT * PARAMS_SLOT {
            self.submit(pending.take(), None);
        }
        Ok(())
    }

    fn batch(&self) -> Batch {
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default()).forget_lifetime();
        let uniforms = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (DISPATCHES_PER_SUBMIT * PARAMS_SLOT) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Batch { encoder, pass, uniforms, params: Vec::with_capacity(DISPATCHES_PER_SUBMIT * PARAMS_SLOT) }
    }

    /// Ends the batch's pass, writes its parameters, records `then` (a copy) after the pass, and submits.
    fn submit(&self, batch: Option<Batch>, then: Option<(&wgpu::Buffer, &wgpu::Buffer, u64)>) {
        let mut encoder = match batch {
            Some(Batch { encoder, pass, uniforms, params }) => {
                drop(pass);
                self.queue.write_buffer(&uniforms, 0, &params);
                encoder
            }
            None => self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()),
        };
        if let Some((from, to, bytes)) = then {
            encoder.copy_buffer_to_buffer(from, 0, to, 0, bytes);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// The first `len` f32s of `buffer`, once every recorded op has run.
    pub async fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        self.check()?;
        let bytes = (len * 4) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            // submitted under the lock: work is submitted in the order it was recorded, whichever thread
            // records or reads (another reader must not submit later work before this encoder's)
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            self.submit(pending.take(), Some((buffer, &staging, bytes)));
        }
        let mapped = MapFuture::new();
        let signal = mapped.state.clone();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| MapFuture::complete(&signal, r));
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| {
            Error::Device(format!("WebGPU failed: waiting for the GPU failed ({e}); switch to the CPU backend"))
        })?;
        let mapped = mapped.await;
        self.check()?; // a lost device explains a failed map better than the map error does
        mapped.map_err(|e| {
            Error::Device(format!("WebGPU failed: reading a result back failed ({e}); switch to the CPU backend"))
        })?;
        let view = staging.slice(..).get_mapped_range().map_err(|e| {
            Error::Device(format!("WebGPU failed: reading a result back failed ({e}); switch to the CPU backend"))
        })?;
        let data = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(data)
    }
}

/// Buffer sizes are rounded up (to 256 bytes, then to a quarter power of two) so the pool finds reuse.
fn bucket(bytes: u64) -> u64 {
    let b = bytes.max(4).next_multiple_of(256);
    if b <= 1 << 16 {
        return b;
    }
    let step = (b.next_power_of_two() / 8).max(256);
    b.next_multiple_of(step)
}

type MapState = Arc<Mutex<(Option<std::result::Result<(), wgpu::BufferAsyncError>>, Option<Waker>)>>;

/// Resolves when a `map_async` callback has run (natively during `poll`, in the browser from the event loop).
struct MapFuture {
    state: MapState,
}

impl MapFuture {
    fn new() -> Self {
        MapFuture { state: Arc::new(Mutex::new((None, None))) }
    }

    fn complete(state: &MapState, result: std::result::Result<(), wgpu::BufferAsyncError>) {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = Some(result);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    }
}

impl Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_round_up_and_stay_close() {
        assert_eq!(bucket(0), 256);
        assert_eq!(bucket(257), 512);
        for bytes in [70_000u64, 1 << 20, 3 << 20, 100_000_000] {
            let b = bucket(bytes);
            assert!(b >= bytes && b <= bytes + bytes / 4 + 256, "{bytes} -> {b}");
        }
    }
}
