//! Shape checking, once for every backend: each op's operands are checked here and its geometry computed
//! (output dims, GEMM sizes, groups, planes, broadcast strides, the attention bias's broadcast), so a backend
//! ([`super::ops::Ops`]) receives only geometry that works. Errors name the op and the shapes it was given.

use crate::error::{Error, Result};

use super::ops::{NoiseScale, StepCoefficients};
use super::Activation;

/// A learned-range step given no variance channels (checked here; the CPU step says it again if ever reached).
pub(crate) const LEARNED_RANGE_WITHOUT_VARIANCE: &str = "a learned-range scheduler needs the model's variance channels";

fn error<T>(message: String) -> Result<T> {
    Err(Error::Model(message))
}

/// Checks that host data of `len` values fills `shape`.
pub fn host_data(len: usize, shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    if len != n {
        return error(format!("a tensor of shape {shape:?} needs {n} values, got {len}"));
    }
    Ok(())
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Checks that `dims` can be viewed as `shape` (the same number of elements).
pub fn reshape(dims: &[usize], shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() != dims.iter().product::<usize>() {
        return error(format!("cannot reshape {dims:?} to {shape:?}"));
    }
    Ok(())
}

/// A copy of the input read through `strides` from `offset`, laid out contiguously as `dims`: the geometry of
/// `transpose` and `narrow`.
#[derive(Debug, Clone)]
pub struct StridedView {
    /// The result's dims.
    pub dims: Vec<usize>,
    /// Where the view starts in the input, in elements.
    pub offset: usize,
    /// The input's stride along each of the result's dims.
    pub strides: Vec<usize>,
}

/// Dims `d0` and `d1` swapped, the result contiguous.
#[derive(Debug, Clone)]
pub struct Transpose {
    pub d0: usize,
    pub d1: usize,
    pub view: StridedView,
}

pub fn transpose(dims: &[usize], d0: usize, d1: usize) -> Result<Transpose> {
    if d0 >= dims.len() || d1 >= dims.len() {
        return error(format!("cannot swap dims {d0} and {d1} of {dims:?}"));
    }
    let (mut out, mut src) = (dims.to_vec(), strides(dims));
    out.swap(d0, d1);
    src.swap(d0, d1);
    Ok(Transpose { d0, d1, view: StridedView { dims: out, offset: 0, strides: src } })
}

/// Elements `start..start + len` of dim `dim`.
#[derive(Debug, Clone)]
pub struct Narrow {
    pub dim: usize,
    pub start: usize,
    pub len: usize,
    pub view: StridedView,
}

pub fn narrow(dims: &[usize], dim: usize, start: usize, len: usize) -> Result<Narrow> {
    if dim >= dims.len() || start + len > dims[dim] {
        return error(format!("cannot take {start}..{} of dim {dim} of {dims:?}", start + len));
    }
    let src = strides(dims);
    let mut out = dims.to_vec();
    out[dim] = len;
    Ok(Narrow { dim, start, len, view: StridedView { dims: out, offset: start * src[dim], strides: src } })
}

/// Parts joined along `dim`: part i starts at `offsets[i]` of that dim of the result.
#[derive(Debug, Clone)]
pub struct Cat {
    pub dim: usize,
    pub dims: Vec<usize>,
    pub offsets: Vec<usize>,
}

pub fn cat(parts: &[&[usize]], dim: usize) -> Result<Cat> {
    let first = *parts.first().ok_or_else(|| Error::Model("cat of no tensors".into()))?;
    let mut dims = first.to_vec();
    if dim >= dims.len() {
        return error(format!("cannot concatenate {dims:?} along dim {dim}"));
    }
    dims[dim] = 0;
    let mut offsets = Vec::with_capacity(parts.len());
    for p in parts {
        let same = p.len() == dims.len() && (0..dims.len()).all(|i| i == dim || p[i] == dims[i]);
        if !same {
            return error(format!("cannot concatenate {first:?} and {p:?} along dim {dim}"));
        }
        offsets.push(dims[dim]);
        dims[dim] += p[dim];
    }
    Ok(Cat { dim, dims, offsets })
}

/// Rows of a (rows, d) table.
#[derive(Debug, Clone, Copy)]
pub struct Gather {
    pub rows: usize,
    pub d: usize,
}

pub fn gather_rows(table: &[usize], ids: &[u32]) -> Result<Gather> {
    let [rows, d] = *table else {
        return error(format!("gather_rows needs a 2-D table, got {table:?}"));
    };
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= rows) {
        return error(format!(
            "token id {bad} is outside the embedding table of {rows} rows: the tokenizer does not match the text encoder"
        ));
    }
    Ok(Gather { rows, d })
}

/// NumPy broadcasting of two operands: the result's `dims`, and each operand's strides over them (0 along
/// broadcast dims).
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub dims: Vec<usize>,
    pub lhs_strides: Vec<usize>,
    pub rhs_strides: Vec<usize>,
    /// Both operands have the result's shape (no broadcasting at all).
    pub same_shape: bool,
}

pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Broadcast> {
    let dims = broadcast_dims(a, b)?;
    Ok(Broadcast {
        lhs_strides: broadcast_strides(a, &dims),
        rhs_strides: broadcast_strides(b, &dims),
        same_shape: a == b,
        dims,
    })
}

/// NumPy broadcast of two shapes.
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], i: usize| if i + d.len() >= rank { d[i + d.len() - rank] } else { 1 };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => error(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// Strides reading `dims` as if broadcast to `out` (0 along broadcast dimensions).
pub fn broadcast_strides(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(dims);
    let lead = out.len() - dims.len();
    (0..out.len()).map(|i| if i < lead || dims[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// `rows` rows of `len` values: an op over the last dim (`l2_normalize`, `layer_norm`).
#[derive(Debug, Clone, Copy)]
pub struct Rows {
    pub rows: usize,
    pub len: usize,
}

/// The rows of `dims`' last dim; `op` names the op in the error.
pub fn rows(op: &str, dims: &[usize]) -> Result<Rows> {
    let len = *dims.last().ok_or_else(|| Error::Model(format!("{op} of a scalar")))?;
    Ok(Rows { rows: dims.iter().product::<usize>() / len.max(1), len })
}

/// LayerNorm's rows, with γ and β of one value per column.
pub fn layer_norm(dims: &[usize], gamma: &[usize], beta: &[usize]) -> Result<Rows> {
    let r = rows("layer_norm", dims)?;
    if gamma != [r.len] || beta != [r.len] {
        return error(format!("LayerNorm over {} was given γ {gamma:?}, β {beta:?}", r.len));
    }
    Ok(r)
}

/// Checks a layer's bias against its `outputs`.
fn bias(bias: Option<&[usize]>, outputs: usize) -> Result<()> {
    match bias {
        Some(b) if b != [outputs] => error(format!("a layer of {outputs} outputs was given a bias {b:?}")),
        _ => Ok(()),
    }
}

/// `linear`: x (…, k) as (m, k) rows, W (n, k); the result (…, n).
#[derive(Debug, Clone)]
pub struct Linear {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub dims: Vec<usize>,
}

pub fn linear(x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<Linear> {
    let k = *x.last().ok_or_else(|| Error::Model("linear of a scalar".into()))?;
    let n = w.first().copied().unwrap_or(0);
    if w != [n, k] {
        return error(format!("a linear layer with weight {w:?} was given inputs {x:?}"));
    }
    bias(b, n)?;
    let mut dims = x.to_vec();
    *dims.last_mut().expect("checked above") = n;
    Ok(Linear { m: x.iter().product::<usize>() / k.max(1), k, n, dims })
}

/// `matmul`: (…, m, k) · (…, k, n), the leading dims broadcast to `batch_dims` (`batch` products).
#[derive(Debug, Clone)]
pub struct Matmul {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub batch_dims: Vec<usize>,
    pub batch: usize,
    /// The result: `batch_dims` then (m, n).
    pub dims: Vec<usize>,
}

pub fn matmul(a: &[usize], b: &[usize]) -> Result<Matmul> {
    let (ra, rb) = (a.len(), b.len());
    if ra < 2 || rb < 2 || a[ra - 1] != b[rb - 2] {
        return error(format!("cannot multiply {a:?} by {b:?}"));
    }
    let (m, k, n) = (a[ra - 2], a[ra - 1], b[rb - 1]);
    let batch_dims = broadcast_dims(&a[..ra - 2], &b[..rb - 2])?;
    let dims = batch_dims.iter().copied().chain([m, n]).collect();
    Ok(Matmul { m, k, n, batch: batch_dims.iter().product(), batch_dims, dims })
}

/// A stride-1 NCHW convolution: input (n, c, h, w), kernel (o, c, kh, kw), `pad` on every side, output
/// (n, o, oh, ow).
#[derive(Debug, Clone, Copy)]
pub struct Conv2d {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Conv2d {
    pub fn dims(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
}

pub fn conv2d(x: &[usize], w: &[usize], b: Option<&[usize]>, pad: usize) -> Result<Conv2d> {
    let [n, c, h, wid] = *x else {
        return error(format!("conv2d needs an NCHW input, got {x:?}"));
    };
    let [o, ci, kh, kw] = *w else {
        return error(format!("conv2d needs an (O, C, kh, kw) kernel, got {w:?}"));
    };
    if ci != c {
        return error(format!("a conv over {ci} channels was given {c} channels"));
    }
    bias(b, o)?;
    let (oh, ow) = ((h + 2 * pad + 1).saturating_sub(kh), (wid + 2 * pad + 1).saturating_sub(kw));
    Ok(Conv2d { n, c, h, w: wid, o, kh, kw, pad, oh, ow })
}

/// GroupNorm over (n, c, …): `groups` groups of c / groups channels, each channel a `plane` of values.
#[derive(Debug, Clone, Copy)]
pub struct GroupNorm {
    pub n: usize,
    pub c: usize,
    pub groups: usize,
    pub plane: usize,
    /// SiLU after the norm (the one activation it fuses).
    pub silu: bool,
}

impl GroupNorm {
    pub fn channels_per_group(&self) -> usize {
        self.c / self.groups
    }
}

/// `modulation` is the (scale, shift) dims, each to be (n, c).
pub fn group_norm(
    x: &[usize],
    groups: usize,
    modulation: Option<(&[usize], &[usize])>,
    act: Option<Activation>,
) -> Result<GroupNorm> {
    let [n, c, ref rest @ ..] = *x else {
        return error(format!("GroupNorm needs (N, C, ...), got {x:?}"));
    };
    if groups == 0 || c % groups != 0 {
        return error(format!("GroupNorm over {c} channels cannot use {groups} groups"));
    }
    let silu = match act {
        None => false,
        Some(Activation::Silu) => true,
        Some(other) => return error(format!("GroupNorm cannot fuse {other:?}")),
    };
    if let Some((scale, shift)) = modulation {
        if scale != [n, c] || shift != [n, c] {
            return error(format!(
                "GroupNorm of {x:?} was given a modulation scale {scale:?} and shift {shift:?}; expected ({n}, {c}) each"
            ));
        }
    }
    Ok(GroupNorm { n, c, groups, plane: rest.iter().product(), silu })
}

/// softmax(q·kᵀ/√d + bias)·v over `heads` heads of d = c / heads channels: q (n, lq, c), k and v (n, lk, c).
#[derive(Debug, Clone, Copy)]
pub struct Attention {
    pub n: usize,
    pub lq: usize,
    pub lk: usize,
    pub c: usize,
    pub heads: usize,
    /// The bias's (N|1, Lq|1) leading dims, when there is one (its last dim is lk).
    pub bias: Option<(usize, usize)>,
}

impl Attention {
    pub fn head_dim(&self) -> usize {
        self.c / self.heads
    }

    pub fn dims(&self) -> [usize; 3] {
        [self.n, self.lq, self.c]
    }
}

pub fn attention(q: &[usize], k: &[usize], v: &[usize], heads: usize, bias: Option<&[usize]>) -> Result<Attention> {
    let [n, lq, c] = *q else {
        return error(format!("attention needs q (N, Lq, C), got {q:?}"));
    };
    let lk = k.get(1).copied().unwrap_or(0);
    if k != [n, lk, c] || v != [n, lk, c] || heads == 0 || c % heads != 0 {
        return error(format!(
            "attention needs q (N, Lq, C), k and v (N, Lk, C) with C divisible by {heads} heads; got {q:?}, {k:?}, {v:?}"
        ));
    }
    let bias = match bias {
        None => None,
        Some(&[bn, bq, bk]) if bk == lk && (bn == 1 || bn == n) && (bq == 1 || bq == lq) => Some((bn, bq)),
        Some(b) => return error(format!("an attention bias {b:?} does not broadcast to ({n}, {lq}, {lk})")),
    };
    Ok(Attention { n, lq, lk, c, heads, bias })
}

/// An NCHW tensor's dims, for the resampling ops.
#[derive(Debug, Clone, Copy)]
pub struct Planes {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

/// `dims` as NCHW; `op` names the op in the error.
pub fn nchw(op: &str, dims: &[usize]) -> Result<Planes> {
    let [n, c, h, w] = *dims else {
        return error(format!("{op} needs NCHW, got {dims:?}"));
    };
    Ok(Planes { n, c, h, w })
}

/// Checks the operands of a denoising step: every tensor holds as many values as `sample`, and a learned-range
/// noise, when noise is added, has the variance channels it reads. Returns that number of values.
pub fn denoising_step(
    model: &[usize],
    log_variance_frac: Option<&[usize]>,
    sample: &[usize],
    noise: Option<&[usize]>,
    c: &StepCoefficients,
) -> Result<usize> {
    let n: usize = sample.iter().product();
    for t in [Some(model), log_variance_frac, noise].into_iter().flatten() {
        if t.iter().product::<usize>() != n {
            return error(format!("a scheduler step over {sample:?} was given a tensor of shape {t:?}"));
        }
    }
    let learned_range = matches!(c.noise, Some(NoiseScale::LearnedRange { .. }));
    if learned_range && noise.is_some() && log_variance_frac.is_none() {
        return error(LEARNED_RANGE_WITHOUT_VARIANCE.into());
    }
    Ok(n)
}
