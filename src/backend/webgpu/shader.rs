//! Kernels declared from Rust: each kernel's uniform parameters are one Rust struct ([`wgsl_params!`]) whose WGSL
//! `struct Params` is generated from it (its layout checked against Rust's at compile time), and its op codes
//! are `#[repr(u32)]` enums ([`crate::backend::op_code`]) emitted as WGSL constants. A [`Shader`] is declared
//! beside the Rust that launches it, with its storage bindings; its module is those declarations and bindings,
//! then `prelude.wgsl`, then its own file.

use std::hash::{Hash, Hasher};

use crate::backend::op_code::OpCode;

/// One WGSL file and the declarations generated for it.
pub struct Shader {
    /// Unique; shown in profiles.
    pub name: &'static str,
    /// The kernel file (`include_str!`).
    pub source: &'static str,
    /// The generated WGSL: the `Params` struct bound as `p`, and op-code constants.
    pub declarations: fn() -> String,
    /// The storage buffers, bound from binding 1 in this order (a launch passes its buffers so).
    pub bindings: &'static [Binding],
}

impl Shader {
    /// The whole module: generated declarations and bindings, the shared prelude, the kernel file.
    pub fn module_source(&self) -> String {
        let bindings: String = self
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!("@group(0) @binding({}) var<storage, {}> {}: array<{}>;\n", i + 1, b.access, b.name, b.element)
            })
            .collect();
        [(self.declarations)().as_str(), "\n", &bindings, "\n", include_str!("prelude.wgsl"), "\n", self.source]
            .concat()
    }
}

/// A storage buffer of a kernel: its WGSL name, access and element type.
pub struct Binding {
    name: &'static str,
    access: &'static str,
    element: &'static str,
}

impl Binding {
    /// f32s the kernel reads.
    pub const fn read(name: &'static str) -> Self {
        Binding { name, access: "read", element: "f32" }
    }

    /// Words the kernel reads (ids, stored weights, a tensor's f32 bits).
    pub const fn read_words(name: &'static str) -> Self {
        Binding { name, access: "read", element: "u32" }
    }

    /// f32s the kernel writes (and may read).
    pub const fn write(name: &'static str) -> Self {
        Binding { name, access: "read_write", element: "f32" }
    }
}

impl PartialEq for Shader {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Shader {}

impl Hash for Shader {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl std::fmt::Debug for Shader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A Rust field type of a kernel's `Params` and its WGSL counterpart in a uniform buffer, with the WGSL
/// alignment and size that the layout check adds up.
pub trait WgslType {
    const ALIGN: usize;
    const SIZE: usize;
    fn wgsl() -> String;
}

impl WgslType for u32 {
    const ALIGN: usize = 4;
    const SIZE: usize = 4;
    fn wgsl() -> String {
        "u32".into()
    }
}

impl WgslType for f32 {
    const ALIGN: usize = 4;
    const SIZE: usize = 4;
    fn wgsl() -> String {
        "f32".into()
    }
}

/// Index arrays (shapes, strides): a uniform array's elements are 16 bytes apart, so `N` vec4s; element k is
/// `a[k / 4][k % 4]`.
impl<const N: usize> WgslType for [[u32; 4]; N] {
    const ALIGN: usize = 16;
    const SIZE: usize = 16 * N;
    fn wgsl() -> String {
        format!("array<vec4<u32>, {N}>")
    }
}

/// The WGSL constants of an op-code enum: `const PREFIX_VARIANT: u32 = value;`, the variant in upper snake case.
pub fn op_code_constants<T: OpCode>() -> String {
    T::VARIANTS
        .iter()
        .map(|(name, value)| format!("const {}_{}: u32 = {value}u;\n", T::PREFIX, screaming(name)))
        .collect()
}

/// `QuickGelu` → `QUICK_GELU`, `Q8_0` → `Q8_0`.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for ch in name.chars() {
        if ch.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = ch.is_ascii_lowercase();
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// `shader!("Name", "file.wgsl", declarations, [read x, write out, read_words ids, …])`: a kernel module's
/// `SHADER`, its file beside the module, its bindings in launch order.
macro_rules! shader {
    ($name:literal, $file:literal, $declarations:expr, [$($access:ident $binding:ident),+ $(,)?]) => {
        pub(super) static SHADER: $crate::backend::webgpu::shader::Shader = $crate::backend::webgpu::shader::Shader {
            name: $name,
            source: include_str!($file),
            declarations: $declarations,
            bindings: &[$($crate::backend::webgpu::shader::Binding::$access(stringify!($binding))),+],
        };
    };
}
pub(super) use shader;

/// `wgsl_params! { /// docs  struct Name { field: u32, … } }`: a `#[repr(C)]` `Pod` struct, its WGSL
/// (`Name::wgsl()`: `struct Params` bound as `p` at group 0, binding 0), and a compile-time check that every
/// field sits at the same offset in both and the sizes agree. Field types implement [`WgslType`]; padding is
/// written as fields (`_pad0: u32`), so both sides have it.
macro_rules! wgsl_params {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty),+
        }

        impl $name {
            /// The WGSL `struct Params`, bound as `p`.
            fn wgsl() -> String {
                use $crate::backend::webgpu::shader::WgslType;
                let fields: String =
                    [$(format!("    {}: {},\n", stringify!($field), <$ty as WgslType>::wgsl())),+].concat();
                format!("struct Params {{\n{fields}}}\n\n@group(0) @binding(0) var<uniform> p: Params;\n")
            }
        }

        const _: () = {
            use $crate::backend::webgpu::shader::WgslType;
            let mut offset = 0usize;
            let mut align = 1usize;
            $(
                offset = offset.next_multiple_of(<$ty as WgslType>::ALIGN);
                assert!(
                    offset == ::core::mem::offset_of!($name, $field),
                    concat!("the WGSL offset of ", stringify!($name), "::", stringify!($field), " differs from Rust's")
                );
                offset += <$ty as WgslType>::SIZE;
                if <$ty as WgslType>::ALIGN > align {
                    align = <$ty as WgslType>::ALIGN;
                }
            )+
            assert!(
                offset.next_multiple_of(align) == ::core::mem::size_of::<$name>(),
                concat!("the WGSL size of ", stringify!($name), " differs from Rust's")
            );
        };
    };
}
pub(super) use wgsl_params;

#[cfg(test)]
mod tests {
    use super::screaming;

    #[test]
    fn op_code_names_become_upper_snake_case() {
        assert_eq!(screaming("QuickGelu"), "QUICK_GELU");
        assert_eq!(screaming("Q8_0"), "Q8_0");
        assert_eq!(screaming("Conv2d"), "CONV2D");
        assert_eq!(screaming("F16"), "F16");
    }
}
