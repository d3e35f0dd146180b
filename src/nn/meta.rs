//! Modules built on "meta": parameters that know their shape and how they
//! will be initialized, without memory.
//!
//! Inside [`on_meta`], every layer constructor of this crate makes its
//! parameters and float buffers as [`Parameter::meta`] / [`Buffer::meta`]: it
//! checks its options, takes its streams from the generator exactly as an
//! eager construction would (so building stays as cheap as counting, and the
//! generator ends in the same state), and allocates nothing. Such a module
//! prints, lists its `named_parameters` and [`Module::state_dict_shapes`],
//! and can be written to safetensors files (each tensor generated in chunks
//! as it is written: see [`crate::io::safetensors::save_module`]). [`materialize`]
//! allocates and initializes all parameters or those a filter selects, and
//! [`materialize_rows`] computes a row range of one of them without storing
//! it; the values equal an eager construction's bit for bit, in any order and
//! any subset. Loading a state dict into a meta module
//! ([`Module::load_state_dict`], [`crate::io::safetensors::load_module`])
//! assigns the file's data with no random init at all (PyTorch's
//! `assign=True`).
//!
//! ```
//! use nninit::nn::{meta, Linear, Module};
//! use nninit::Generator;
//!
//! let lazy = meta::on_meta(|| Linear::with_options(4096, 4096, true, Some(&mut Generator::new(7)))).unwrap();
//! assert!(lazy.weight.is_meta());
//! assert_eq!(lazy.weight.shape(), Some(vec![4096, 4096]));
//! let rows = meta::materialize_rows(&lazy, "weight", 10..12).unwrap();
//! meta::materialize(&lazy, |_| true).unwrap();
//! let eager = Linear::with_options(4096, 4096, true, Some(&mut Generator::new(7))).unwrap();
//! assert_eq!(*lazy.weight.data().unwrap(), *eager.weight.data().unwrap());
//! assert_eq!(rows.as_slice(), &eager.weight.data().unwrap().as_slice()[10 * 4096..12 * 4096]);
//! ```
//!
//! Meta construction needs a counter-based generator: a torch-exact
//! generator's stream is serial, so a deferred draw could not be replayed
//! ([`Error::MetaTorchGenerator`]).

use std::cell::Cell;
use std::ops::Range;

use super::{Buffer, Module, Parameter, named_slots};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::rng::Generator;
use crate::tensor::Tensor;

thread_local! {
    static META: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with meta construction on for this thread (nested calls keep
/// it on; it is restored afterwards, also if `f` panics).
pub fn on_meta<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            META.with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(META.with(|m| m.replace(true)));
    f()
}

/// Whether layer constructors on this thread build on meta.
pub fn is_on_meta() -> bool {
    META.with(Cell::get)
}

/// A parameter initialized by `init` (drawn from `generator`), eager or on
/// meta as [`on_meta`] decides: what every layer constructor uses.
pub(crate) fn parameter(
    init: &Init,
    shape: &[usize],
    generator: Option<&mut Generator>,
) -> Result<Parameter> {
    if is_on_meta() {
        Ok(Parameter::meta(init.defer(shape, generator)?))
    } else {
        Ok(Parameter::new(init.tensor(shape, generator)?))
    }
}

/// A `float32` buffer of `shape` holding `value` everywhere, eager or on
/// meta.
pub(crate) fn constant_buffer(shape: &[usize], value: f32) -> Result<Buffer> {
    if is_on_meta() {
        let init = Init::Constant {
            val: f64::from(value),
        };
        Ok(Buffer::meta(init.defer(shape, None)?))
    } else {
        Ok(Buffer::new(Tensor::full(shape, value)?))
    }
}

/// A parameter of `shape` holding `value` everywhere (no random draws),
/// eager or on meta.
pub(crate) fn constant_parameter(shape: &[usize], value: f32) -> Result<Parameter> {
    parameter(
        &Init::Constant {
            val: f64::from(value),
        },
        shape,
        None,
    )
}

/// Allocates and initializes every parameter and buffer on meta whose
/// dotted name `filter` accepts (a tied parameter once, under any of its
/// names), in parallel over the tensors' own fills. The values are those of
/// an eager construction.
///
/// # Errors
/// [`Error::OutOfMemory`] or shape errors from the allocations.
pub fn materialize(module: &dyn Module, filter: impl Fn(&str) -> bool) -> Result<()> {
    for (name, slot, _) in named_slots(module) {
        if filter(&name) {
            slot.materialize()?;
        }
    }
    Ok(())
}

/// Rows `rows` (along dimension 0) of the parameter or buffer `name` as
/// its initialization makes them, without materializing it: a shard of a
/// weight, computed on its own. For a materialized tensor, a copy of those
/// rows.
///
/// # Errors
/// [`Error::MetaParameter`] naming an unknown `name`, [`Error::RangeOutOfBounds`]
/// for rows outside the tensor, [`Error::NotShardable`] for a part of a
/// whole-tensor initializer (orthogonal, sparse, eye, dirac).
pub fn materialize_rows(module: &dyn Module, name: &str, rows: Range<usize>) -> Result<Tensor> {
    let Some((_, slot, _)) = named_slots(module).into_iter().find(|(n, _, _)| n == name) else {
        return Err(Error::MetaParameter {
            name: format!("{name:?} (no such parameter or buffer)"),
        });
    };
    let shape = slot.shape_of().ok_or(Error::UninitializedParameter)?;
    let (&n, rest) = shape.split_first().ok_or(Error::ZeroDim {
        op: "materialize_rows",
    })?;
    if rows.start > rows.end || rows.end > n {
        return Err(Error::RangeOutOfBounds {
            start: rows.start,
            end: rows.end,
            size: n,
        });
    }
    let width: usize = rest.iter().product();
    let mut out_shape = shape.clone();
    out_shape[0] = rows.len();
    match slot.deferred() {
        Some(m) => {
            let mut t = Tensor::zeros(&out_shape)?;
            m.fill((rows.start * width) as u64, t.as_mut_slice())?;
            Ok(t)
        }
        None => {
            let value = slot.snapshot().ok_or(Error::UninitializedParameter)?;
            let t = value.as_f32().ok_or(Error::Dtype {
                what: name.to_string(),
                expected: "float32",
                found: "int64",
            })?;
            Tensor::from_slice(
                &t.as_slice()[rows.start * width..rows.end * width],
                &out_shape,
            )
        }
    }
}
