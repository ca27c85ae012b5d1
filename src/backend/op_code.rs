//! Op codes: `#[repr(u32)]` enums a kernel switches on, whose variant names and values a shader generator
//! reads ([`OpCode::VARIANTS`]), so the numbers are written nowhere by hand.

/// An enum of op codes, declared with [`op_code!`]. Only the WebGPU backend's shader generator reads them.
#[cfg(feature = "webgpu")]
pub trait OpCode: Copy {
    /// The prefix of the constants a shader sees (`BINARY` → `BINARY_ADD`, `BINARY_SUB`, …).
    const PREFIX: &'static str;
    /// (variant name, value), in declaration order from 0.
    const VARIANTS: &'static [(&'static str, u32)];

    fn code(self) -> u32;
}

/// `op_code! { /// docs  pub enum Name as "PREFIX" { A, B, … } }`: a `#[repr(u32)]` enum numbered from 0, and its
/// `OpCode` implementation (with the `webgpu` feature).
macro_rules! op_code {
    ($(#[$meta:meta])* $vis:vis enum $name:ident as $prefix:literal { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        #[cfg(feature = "webgpu")]
        impl $crate::backend::op_code::OpCode for $name {
            const PREFIX: &'static str = $prefix;
            const VARIANTS: &'static [(&'static str, u32)] = &[$((stringify!($variant), $name::$variant as u32)),+];

            fn code(self) -> u32 {
                self as u32
            }
        }
    };
}
pub(crate) use op_code;
