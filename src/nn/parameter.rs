//! [`Parameter`] and [`Buffer`]: shared handles on a module's tensors.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::init::{Deferred, InitTarget};
use crate::kernels::Kernels;
use crate::tensor::{AnyTensor, IntTensor, Tensor};

/// What a handle points at: the data (absent until a lazy module infers its
/// shape) and, for parameters, the gradient; an integer buffer holds `ints`
/// instead of `data`.
#[derive(Debug, Default)]
struct Slot {
    data: Option<Tensor>,
    grad: Option<Tensor>,
    ints: Option<IntTensor>,
    /// On meta: the shape and the initialization to do when materialized.
    meta: Option<Deferred>,
    /// A value no other slot and no earlier state of this one had: taken
    /// from [`next_version`] on every write lock, so that a cache of
    /// something derived from the data (a layer's packed weight) can tell
    /// whether it is still current by comparing `(identity, version)`.
    version: u64,
}

/// A process-wide counter: versions are never reused, not even by a new
/// slot at a freed slot's address.
fn next_version() -> u64 {
    static VERSIONS: AtomicU64 = AtomicU64::new(1);
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

/// A shared, lockable slot; the identity of a [`Parameter`] or [`Buffer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared(Arc<RwLock<Slot>>);

impl Shared {
    fn new(data: Option<Tensor>) -> Shared {
        Shared(Arc::new(RwLock::new(Slot {
            data,
            version: next_version(),
            ..Slot::default()
        })))
    }

    // A lock is poisoned only when a thread panicked while holding it; the
    // slot holds plain tensors, which stay valid, so we carry on.
    fn read(&self) -> RwLockReadGuard<'_, Slot> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Slot> {
        let mut slot = self.0.write().unwrap_or_else(|e| e.into_inner());
        slot.version = next_version();
        slot
    }

    fn data(&self) -> Result<DataRef<'_>> {
        let guard = self.read();
        check_float(&guard)?;
        Ok(DataRef(guard))
    }

    fn data_mut(&self) -> Result<DataMut<'_>> {
        let guard = self.write();
        check_float(&guard)?;
        Ok(DataMut(guard))
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

/// A slot's data, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    F32(&'a Tensor),
    I64(&'a IntTensor),
}

/// A slot's data, mutably.
#[derive(Debug)]
pub(crate) enum ValueMut<'a> {
    F32(&'a mut [f32]),
    I64(&'a mut [i64]),
}

/// Whether `slot` holds `float32` data: an integer buffer is an
/// [`Error::Dtype`], an empty slot an [`Error::UninitializedParameter`].
fn check_float(slot: &Slot) -> Result<()> {
    if slot.meta.is_some() {
        return Err(Error::MetaParameter {
            name: String::new(),
        });
    }
    match (&slot.data, &slot.ints) {
        (Some(_), _) => Ok(()),
        (None, Some(_)) => Err(Error::Dtype {
            what: "this buffer".to_string(),
            expected: "float32",
            found: "int64",
        }),
        (None, None) => Err(Error::UninitializedParameter),
    }
}

/// A read lock on a parameter's data; derefs to the [`Tensor`].
#[derive(Debug)]
pub struct DataRef<'a>(RwLockReadGuard<'a, Slot>);

impl Deref for DataRef<'_> {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        self.0
            .data
            .as_ref()
            .expect("DataRef is only made for initialized slots")
    }
}

impl DataRef<'_> {
    /// The data's version: different after any write to the slot (see
    /// `Slot::version`); with [`Parameter::id`], a key for caches.
    pub(crate) fn version(&self) -> u64 {
        self.0.version
    }
}

/// A write lock on a parameter's data; derefs (mutably) to the [`Tensor`].
#[derive(Debug)]
pub struct DataMut<'a>(RwLockWriteGuard<'a, Slot>);

impl Deref for DataMut<'_> {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        self.0
            .data
            .as_ref()
            .expect("DataMut is only made for initialized slots")
    }
}

impl DerefMut for DataMut<'_> {
    fn deref_mut(&mut self) -> &mut Tensor {
        self.0
            .data
            .as_mut()
            .expect("DataMut is only made for initialized slots")
    }
}

/// A trainable tensor of a module: PyTorch's `nn.Parameter`.
///
/// A `Parameter` is a cheap handle (an `Arc`): **clones alias the same
/// storage**, which is how tied parameters work. [`Parameter::ptr_eq`] tells
/// an alias from an equal copy. It holds the data and `grad`, which is `None`
/// until a backward pass accumulates into it. It is `Send + Sync`; access
/// goes through a read-write lock ([`data`](Parameter::data) /
/// [`data_mut`](Parameter::data_mut)), so hold the guards briefly.
///
/// A parameter of a lazy module ([`Linear::lazy`](super::Linear::lazy)) has no
/// data until the first forward infers its shape: until then
/// [`data`](Parameter::data) is an [`Error::UninitializedParameter`] and it
/// prints as `<UninitializedParameter>`, never garbage.
///
/// ```
/// use nninit::Tensor;
/// use nninit::nn::Parameter;
///
/// let p = Parameter::new(Tensor::ones(&[2]).unwrap());
/// let alias = p.clone();
/// alias.data_mut().unwrap()[[0]] = 42.0;
/// assert_eq!(p.data().unwrap()[[0]], 42.0);
/// assert!(p.ptr_eq(&alias));
/// let copy = Parameter::new(p.data().unwrap().clone());
/// assert!(!p.ptr_eq(&copy));
/// assert!(p.grad().is_none());
/// assert_eq!(p.to_string(), "Parameter containing:\ntensor([42.,  1.], requires_grad=True)");
/// ```
#[derive(Clone, Debug)]
pub struct Parameter(Shared);

impl Parameter {
    /// A parameter holding `data`, with no gradient.
    pub fn new(data: Tensor) -> Parameter {
        Parameter(Shared::new(Some(data)))
    }

    /// A parameter whose shape is not known yet (PyTorch's
    /// `UninitializedParameter`).
    pub fn uninitialized() -> Parameter {
        Parameter(Shared::new(None))
    }

    /// A parameter on meta: its shape and initialization are known, nothing
    /// is allocated until [`meta::materialize`](super::meta::materialize) (or
    /// a state dict is loaded into it).
    pub fn meta(deferred: Deferred) -> Parameter {
        let shared = Shared::new(None);
        shared.write().meta = Some(deferred);
        Parameter(shared)
    }

    /// Whether the parameter is on meta (not materialized).
    pub fn is_meta(&self) -> bool {
        self.0.read().meta.is_some()
    }

    /// Whether the parameter has data (false only for a lazy module's
    /// parameters before its first forward).
    pub fn is_initialized(&self) -> bool {
        self.0.read().data.is_some()
    }

    /// Read access to the data.
    ///
    /// # Errors
    /// [`Error::UninitializedParameter`] before a lazy module's first forward.
    pub fn data(&self) -> Result<DataRef<'_>> {
        self.0.data()
    }

    /// Write access to the data (seen through every alias).
    ///
    /// # Errors
    /// [`Error::UninitializedParameter`] before a lazy module's first forward.
    pub fn data_mut(&self) -> Result<DataMut<'_>> {
        self.0.data_mut()
    }

    /// The shape (also on meta), or `None` while uninitialized.
    pub fn shape(&self) -> Option<Vec<usize>> {
        self.0.shape_of()
    }

    /// Replaces the data (and drops the gradient), initializing the
    /// parameter if it was not (or materializing it with `data` if it was
    /// on meta).
    pub fn set_data(&self, data: Tensor) {
        let mut slot = self.0.write();
        slot.data = Some(data);
        slot.grad = None;
        slot.meta = None;
    }

    /// Takes over `other`'s data or deferred init (keeping this handle's
    /// identity, so its aliases see it) and drops the gradient.
    pub(crate) fn adopt(&self, other: Parameter) {
        let (data, meta) = {
            let mut o = other.0.write();
            (o.data.take(), o.meta.take())
        };
        let mut slot = self.0.write();
        slot.data = data;
        slot.meta = meta;
        slot.grad = None;
    }

    /// A copy of the gradient; `None` until a backward pass.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.read().grad.clone()
    }

    /// Sets or clears the gradient.
    ///
    /// # Errors
    /// [`Error::GradShape`] if the gradient's shape is not the data's.
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        let mut slot = self.0.write();
        if let (Some(g), Some(d)) = (&grad, &slot.data) {
            check_grad_shape(PARAMETER_GRAD, d.shape(), g.shape())?;
        }
        slot.grad = grad;
        Ok(())
    }

    /// Drops the gradient (`grad` becomes `None`, PyTorch's
    /// `zero_grad(set_to_none=True)`).
    pub fn clear_grad(&self) {
        self.0.write().grad = None;
    }

    /// Adds `grad` into the gradient (`None` becomes a copy of `grad`): the
    /// gradients of every use of a tied parameter are summed this way.
    ///
    /// # Errors
    /// [`Error::UninitializedParameter`], or [`Error::GradShape`] if `grad`
    /// does not have the data's shape.
    pub fn accumulate_grad(&self, grad: &Tensor) -> Result<()> {
        self.update_grad(grad.shape(), |acc| {
            match acc {
                Some(acc) => {
                    for (a, g) in acc.as_mut_slice().iter_mut().zip(grad.as_slice()) {
                        *a += g;
                    }
                }
                None => *acc = Some(grad.clone()),
            }
            Ok(())
        })
    }

    /// Runs `f` on the gradient slot after checking `shape` against the
    /// data's shape (the gradient, if any, always has the data's shape).
    pub(crate) fn update_grad(
        &self,
        shape: &[usize],
        f: impl FnOnce(&mut Option<Tensor>) -> Result<()>,
    ) -> Result<()> {
        let mut slot = self.0.write();
        let Slot { data, grad, .. } = &mut *slot;
        let Some(data) = data else {
            return Err(Error::UninitializedParameter);
        };
        check_grad_shape(PARAMETER_GRAD, data.shape(), shape)?;
        f(grad)
    }

    /// Runs `f` on the data and the gradient together (for optimizers).
    ///
    /// # Errors
    /// [`Error::UninitializedParameter`].
    pub fn with_data_and_grad<R>(
        &self,
        f: impl FnOnce(&mut Tensor, Option<&Tensor>) -> R,
    ) -> Result<R> {
        let mut slot = self.0.write();
        let Slot { data, grad, .. } = &mut *slot;
        let data = data.as_mut().ok_or(Error::UninitializedParameter)?;
        Ok(f(data, grad.as_ref()))
    }

    /// Whether `self` and `other` are the same parameter (aliases of one
    /// storage), not merely equal.
    pub fn ptr_eq(&self, other: &Parameter) -> bool {
        self.id() == other.id()
    }

    /// An identity key: equal for aliases, distinct for distinct parameters
    /// alive at the same time.
    pub fn id(&self) -> usize {
        self.0.id()
    }
}

/// What [`Error::GradShape`] calls a parameter's gradient.
const PARAMETER_GRAD: &str = "gradient of a parameter";

/// [`Error::GradShape`] naming `what` unless `found == expected`.
pub(crate) fn check_grad_shape(what: &str, expected: &[usize], found: &[usize]) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::GradShape {
            what: what.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

impl fmt::Display for Parameter {
    /// `Parameter containing:` and the tensor with `requires_grad=True`, as
    /// PyTorch prints a parameter; `<UninitializedParameter>` before a lazy
    /// module's first forward.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.0.read();
        match (&slot.data, &slot.meta) {
            (Some(t), _) => write!(
                f,
                "Parameter containing:\n{}",
                crate::tensor::repr_with(t, f.precision(), &["requires_grad=True"])
            ),
            (None, Some(m)) => {
                let dims: Vec<String> = m.shape().iter().map(usize::to_string).collect();
                write!(
                    f,
                    "Parameter containing:\ntensor(..., device='meta', size=({}), requires_grad=True)",
                    dims.join(", ") + if dims.len() == 1 { "," } else { "" }
                )
            }
            (None, None) => f.write_str("<UninitializedParameter>"),
        }
    }
}

impl InitTarget for &Parameter {
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        f(&mut *self.data_mut()?)
    }

    fn replace_deferred(
        &self,
        f: &mut dyn FnMut(&[usize]) -> Result<Deferred>,
    ) -> Option<Result<()>> {
        self.0.replace_deferred(f)
    }
}

impl InitTarget for &mut Parameter {
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        f(&mut *self.data_mut()?)
    }

    fn replace_deferred(
        &self,
        f: &mut dyn FnMut(&[usize]) -> Result<Deferred>,
    ) -> Option<Result<()>> {
        self.0.replace_deferred(f)
    }
}

/// Non-trainable state of a module (PyTorch's *buffer*): listed in
/// `state_dict`, not in `named_parameters`, never stepped by an optimizer.
///
/// A shared handle like [`Parameter`] (clones alias), without a gradient.
/// It holds a `float32` [`Tensor`] or, like BatchNorm's
/// `num_batches_tracked`, an `int64` [`IntTensor`] ([`Buffer::new_i64`]).
///
/// ```
/// use nninit::IntTensor;
/// use nninit::nn::Buffer;
///
/// let count = Buffer::new_i64(IntTensor::scalar(0));
/// count.update_i64(|t| t.as_mut_slice()[0] += 1).unwrap();
/// assert_eq!(count.to_string(), "tensor(1)");
/// assert_eq!(count.data().unwrap_err().to_string(), "this buffer has dtype int64, expected float32");
/// ```
#[derive(Clone, Debug)]
pub struct Buffer(Shared);

impl Buffer {
    /// A buffer holding `data`.
    pub fn new(data: Tensor) -> Buffer {
        Buffer(Shared::new(Some(data)))
    }

    /// A `float32` buffer on meta (see [`Parameter::meta`]).
    pub fn meta(deferred: Deferred) -> Buffer {
        let shared = Shared::new(None);
        shared.write().meta = Some(deferred);
        Buffer(shared)
    }

    /// An integer buffer holding `data`.
    pub fn new_i64(data: IntTensor) -> Buffer {
        let shared = Shared::new(None);
        shared.write().ints = Some(data);
        Buffer(shared)
    }

    /// A copy of the value, of either dtype (materialized first if on
    /// meta).
    ///
    /// # Panics
    /// If the deferred initialization cannot allocate the tensor.
    pub fn value(&self) -> AnyTensor {
        if let Some(m) = self.0.read().meta.clone() {
            return AnyTensor::F32(m.tensor().expect("a buffer's deferred init allocates"));
        }
        self.0
            .snapshot()
            .expect("a buffer is made with data of one dtype")
    }

    /// Runs `f` on an integer buffer's data.
    ///
    /// # Errors
    /// [`Error::Dtype`] for a `float32` buffer.
    pub fn update_i64<R>(&self, f: impl FnOnce(&mut IntTensor) -> R) -> Result<R> {
        let mut slot = self.0.write();
        match &mut slot.ints {
            Some(t) => Ok(f(t)),
            None => Err(Error::Dtype {
                what: "this buffer".to_string(),
                expected: "int64",
                found: "float32",
            }),
        }
    }

    /// Read access to the data of a `float32` buffer.
    ///
    /// # Errors
    /// [`Error::Dtype`] for an integer buffer (use [`value`](Self::value) or
    /// [`update_i64`](Self::update_i64)); never for a buffer made by
    /// [`Buffer::new`].
    pub fn data(&self) -> Result<DataRef<'_>> {
        self.0.data()
    }

    /// Write access to the data.
    ///
    /// # Errors
    /// As [`Buffer::data`].
    pub fn data_mut(&self) -> Result<DataMut<'_>> {
        self.0.data_mut()
    }

    /// Whether two handles alias one buffer.
    pub fn ptr_eq(&self, other: &Buffer) -> bool {
        self.0.id() == other.0.id()
    }

    /// An identity key (see [`Parameter::id`]).
    pub fn id(&self) -> usize {
        self.0.id()
    }
}

impl fmt::Display for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.snapshot() {
            Some(t) => fmt::Display::fmt(&t, f),
            None => f.write_str("<UninitializedBuffer>"),
        }
    }
}

impl InitTarget for &Buffer {
    fn with_tensor<R>(self, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
        f(&mut *self.data_mut()?)
    }

    fn replace_deferred(
        &self,
        f: &mut dyn FnMut(&[usize]) -> Result<Deferred>,
    ) -> Option<Result<()>> {
        self.0.replace_deferred(f)
    }
}

impl Parameter {
    pub(crate) fn slot(&self) -> &Shared {
        &self.0
    }
}

impl Buffer {
    pub(crate) fn slot(&self) -> &Shared {
        &self.0
    }
}

/// Crate-internal access to the slot behind either handle.
impl Shared {
    pub(crate) fn identity(&self) -> usize {
        self.id()
    }

    pub(crate) fn snapshot(&self) -> Option<AnyTensor> {
        let slot = self.read();
        match (&slot.data, &slot.ints) {
            (Some(t), _) => Some(AnyTensor::F32(t.clone())),
            (None, Some(t)) => Some(AnyTensor::I64(t.clone())),
            (None, None) => None,
        }
    }

    pub(crate) fn shape_of(&self) -> Option<Vec<usize>> {
        let slot = self.read();
        match (&slot.data, &slot.ints, &slot.meta) {
            (Some(t), _, _) => Some(t.shape().to_vec()),
            (None, Some(t), _) => Some(t.shape().to_vec()),
            (None, None, Some(m)) => Some(m.shape().to_vec()),
            (None, None, None) => None,
        }
    }

    /// Replaces a slot's deferred init by `f(shape)`; `None` if the slot is
    /// not on meta.
    pub(crate) fn replace_deferred(
        &self,
        f: &mut dyn FnMut(&[usize]) -> Result<Deferred>,
    ) -> Option<Result<()>> {
        let mut slot = self.write();
        let shape = slot.meta.as_ref()?.shape().to_vec();
        Some(f(&shape).map(|d| slot.meta = Some(d)))
    }

    /// The deferred initialization of a slot on meta.
    pub(crate) fn deferred(&self) -> Option<Deferred> {
        self.read().meta.clone()
    }

    /// Materializes a slot on meta (allocates and initializes it); a no-op
    /// for any other slot.
    pub(crate) fn materialize(&self) -> Result<()> {
        let Some(m) = self.deferred() else {
            return Ok(());
        };
        let t = m.tensor()?;
        let mut slot = self.write();
        slot.data = Some(t);
        slot.meta = None;
        Ok(())
    }

    /// Runs `f` on the slot's data (either dtype) under its read lock;
    /// `None` for an uninitialized slot.
    pub(crate) fn with_value<R>(&self, f: impl FnOnce(ValueRef<'_>) -> R) -> Option<R> {
        let slot = self.read();
        match (&slot.data, &slot.ints) {
            (Some(t), _) => Some(f(ValueRef::F32(t))),
            (None, Some(t)) => Some(f(ValueRef::I64(t))),
            (None, None) => None,
        }
    }

    /// Whether the slot holds integers.
    pub(crate) fn is_int(&self) -> bool {
        self.read().ints.is_some()
    }

    /// Replaces the data by `shape` values that `fill` writes (into the
    /// existing storage when the shape is the same): `fill` gets the slot's
    /// own dtype.
    pub(crate) fn load_with(&self, shape: &[usize], fill: impl FnOnce(ValueMut<'_>)) -> Result<()> {
        let mut slot = self.write();
        if let Some(ints) = &mut slot.ints {
            if ints.shape() != shape {
                *ints = IntTensor::zeros(shape)?;
            }
            fill(ValueMut::I64(ints.as_mut_slice()));
            return Ok(());
        }
        slot.meta = None;
        if slot.data.as_ref().is_none_or(|d| d.shape() != shape) {
            slot.data = Some(Tensor::zeros(shape)?);
        }
        let data = slot.data.as_mut().expect("just made");
        fill(ValueMut::F32(data.as_mut_slice()));
        Ok(())
    }

    /// Copies `src` in, converting its dtype to the slot's as PyTorch's
    /// `copy_` does (`int64` to `float32` rounds, `float32` to `int64`
    /// truncates toward zero), when the shapes agree; else (an uninitialized
    /// slot, or a caller that checked) replaces the data with a copy.
    pub(crate) fn load(&self, src: &AnyTensor) {
        let mut slot = self.write();
        slot.meta = None;
        if let Some(ints) = &mut slot.ints {
            let values: Vec<i64> = match src {
                AnyTensor::I64(t) => t.as_slice().to_vec(),
                AnyTensor::F32(t) => t.as_slice().iter().map(|&v| v as i64).collect(),
            };
            *ints = IntTensor::from_vec(values, src.shape()).expect("same element count");
            return;
        }
        let converted;
        let src = match src {
            AnyTensor::F32(t) => t,
            AnyTensor::I64(t) => {
                let values: Vec<f32> = t.as_slice().iter().map(|&v| v as f32).collect();
                converted = Tensor::from_vec(values, t.shape()).expect("same element count");
                &converted
            }
        };
        match &mut slot.data {
            Some(d) if d.shape() == src.shape() => d.as_mut_slice().copy_from_slice(src.as_slice()),
            d => *d = Some(src.clone()),
        }
    }
}

/// Something derived from a parameter's data and kept between calls while
/// the data is unchanged: a layer's weight packed for the GEMM. Keyed by
/// the parameter's identity, the data's version (new after any write) and
/// the instruction set; a clone of its layer starts empty.
pub(crate) struct Derived<V>(Option<(DerivedKey, V)>);

/// Weights up to this many floats (64 MiB) keep their packed form between
/// forwards; larger ones are packed for each forward and not kept (a second
/// copy of a large model's weights would not fit beside it).
pub(crate) const KEEP_PACKED_FLOATS: usize = 1 << 24;

/// See [`Derived`].
type DerivedKey = (usize, u64, crate::kernels::Isa);

impl<V> Derived<V> {
    /// The value for `param`'s current data `data` (a read lock of it),
    /// made by `make` unless the kept one is for exactly this data.
    ///
    /// # Errors
    /// Those of `make`.
    pub(crate) fn get_or_make(
        &mut self,
        param: &Parameter,
        data: &DataRef<'_>,
        make: impl FnOnce(&Tensor) -> Result<V>,
    ) -> Result<&V> {
        let key = (param.id(), data.version(), Kernels::active().isa());
        if !matches!(&self.0, Some((k, _)) if *k == key) {
            self.0 = Some((key, make(data)?));
        }
        Ok(&self.0.as_ref().expect("kept or just made").1)
    }
}

impl<V> Default for Derived<V> {
    fn default() -> Self {
        Derived(None)
    }
}

impl<V> Clone for Derived<V> {
    fn clone(&self) -> Self {
        Derived(None)
    }
}

impl<V> fmt::Debug for Derived<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "kept" } else { "empty" })
    }
}
