//! `torch.nn`'s parameter management: [`Parameter`], the [`Module`] trait,
//! [`Linear`] (and its lazy form), [`ReLU`], [`Sequential`], state dicts.
//!
//! ```
//! use nninit::nn::{Linear, Module, ReLU, Sequential};
//! use nninit::{Tensor, manual_seed};
//!
//! manual_seed(42);
//! let mut net = Sequential::new()
//!     .with(Linear::lazy(8))
//!     .with(ReLU::new())
//!     .with(Linear::lazy(1));
//! let x = Tensor::rand(&[2, 4], None).unwrap();
//! assert_eq!(net.forward(&x).unwrap().shape(), &[2, 1]);
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
//! println!("{net}");
//! ```
//!
//! # Modules are values, parameters are shared
//! A module owns its children; a [`Parameter`] is a shared handle. A *tied*
//! layer is a clone of a [`Linear`] placed at two positions: both clones hold
//! the same parameters (PyTorch puts the same module object at both places;
//! the parameters, their names in `named_parameters` and `state_dict`, and
//! the summed gradients are the same). One difference: `named_modules` lists
//! both places, since they are two module values.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::{Index, IndexMut};

use crate::error::{Error, Result};
use crate::tensor::{AnyTensor, Tensor};

/// Implements `Display` (PyTorch's module printing) for module types.
macro_rules! display_as_module {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::nn::repr(self))
            }
        }
    )*};
}
pub(crate) use display_as_module;

mod activation;
mod conv;
mod dropout;
mod embedding;
mod linear;
mod loss;
pub mod meta;
mod norm;
mod optim;
mod parameter;
pub mod planned;
mod pool;
mod sequential;
mod shape;

pub use activation::{Approximate, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softmax, Tanh};
pub use conv::{Conv, Conv1d, Conv2d, ConvOptions, Padding};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use loss::MSELoss;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormOptions, LayerNorm};
pub use optim::{SGD, SgdOptions};
pub use parameter::{Buffer, DataMut, DataRef, Parameter};
pub(crate) use parameter::{Shared, ValueMut, ValueRef, check_grad_shape};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, PoolOptions};
pub use sequential::Sequential;
pub use shape::{Flatten, Identity};

/// Access to a module as `dyn Module` and as `dyn Any`; implemented for
/// every [`Module`] automatically.
pub trait AsModule {
    /// `self` as a trait object.
    fn as_module(&self) -> &dyn Module;
    /// `self` as a mutable trait object.
    fn as_module_mut(&mut self) -> &mut dyn Module;
    /// `self` as `Any`, for downcasts.
    fn as_any(&self) -> &dyn Any;
    /// `self` as mutable `Any`, for downcasts.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Module> AsModule for T {
    fn as_module(&self) -> &dyn Module {
        self
    }
    fn as_module_mut(&mut self) -> &mut dyn Module {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A layer or a network: PyTorch's `nn.Module`.
///
/// Implement [`type_name`](Module::type_name) and
/// [`forward`](Module::forward), and the structural methods your module has:
/// [`children`](Module::children) / [`children_mut`](Module::children_mut)
/// (ordered, named), [`own_parameters`](Module::own_parameters),
/// [`own_buffers`](Module::own_buffers). Everything else
/// (`named_parameters`, `state_dict`, `load_state_dict`, `apply`, printing)
/// is provided from those.
///
/// ```
/// use nninit::nn::{Linear, Module, Parameter};
/// use nninit::{Result, Tensor};
///
/// #[derive(Debug)]
/// struct Scaled {
///     inner: Linear,
///     scale: Parameter,
/// }
///
/// impl Module for Scaled {
///     fn type_name(&self) -> &'static str {
///         "Scaled"
///     }
///     fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
///         let mut y = self.inner.forward(x)?;
///         y *= self.scale.data()?.item()?;
///         Ok(y)
///     }
///     fn children(&self) -> Vec<(&str, &dyn Module)> {
///         vec![("inner", &self.inner)]
///     }
///     fn children_mut(&mut self) -> Vec<(&str, &mut dyn Module)> {
///         vec![("inner", &mut self.inner)]
///     }
///     fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
///         vec![("scale", &self.scale)]
///     }
/// }
///
/// let m = Scaled { inner: Linear::new(3, 2).unwrap(), scale: Parameter::new(Tensor::scalar(2.0)) };
/// let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["scale", "inner.weight", "inner.bias"]);
/// assert_eq!(
///     nninit::nn::repr(&m),
///     "Scaled(\n  (inner): Linear(in_features=3, out_features=2, bias=True)\n)"
/// );
/// ```
///
/// A user type gets `Display` by forwarding to [`repr`]:
/// `impl fmt::Display for Scaled { fn fmt(..) { f.write_str(&nn::repr(self)) } }`;
/// `dyn Module` prints that way already.
pub trait Module: AsModule + Send + Sync + 'static {
    /// The class name printed by `Display` (`Linear`, `Sequential`).
    fn type_name(&self) -> &'static str;

    /// The part of the printed form inside the parentheses, before the
    /// children (`in_features=4, out_features=8, bias=True`); may span lines.
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// Computes the output for `input`.
    ///
    /// # Errors
    /// Shape errors of the layers, as PyTorch reports them.
    fn forward(&mut self, input: &Tensor) -> Result<Tensor>;

    /// Propagates `grad_output` (the gradient of the loss with respect to
    /// the output of the latest training-mode [`forward`](Module::forward)
    /// not yet consumed) back through the module: accumulates the gradients
    /// of the parameters into [`Parameter::grad`] and returns the gradient
    /// with respect to that forward's input.
    ///
    /// A module used several times in one forward (a reused layer) records
    /// each use; backward calls consume the records last-in first-out, which
    /// is the order reverse-mode differentiation visits them.
    ///
    /// # Errors
    /// [`Error::BackwardBeforeForward`] without a recorded forward (not in
    /// training mode, or already consumed), [`Error::GradShape`] for a
    /// gradient of the wrong shape, [`Error::BackwardUnsupported`] for a
    /// module that does not implement it (the default).
    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let _ = grad_output;
        Err(Error::BackwardUnsupported {
            module: self.type_name().to_string(),
        })
    }

    /// Hook: switch this module's own recording on or off (not its
    /// children's; [`train`](Module::train) walks the tree). Modules with a
    /// backward override it and drop their records when switched off.
    fn set_training(&mut self, training: bool) {
        let _ = training;
    }

    /// Whether this module itself records for backward.
    fn is_training(&self) -> bool {
        false
    }

    /// Switches training mode on or off for the whole tree. In training mode
    /// a forward records what its backward needs; otherwise (the initial
    /// state: unlike PyTorch, where autograd always records, inference is
    /// the default so that a forward costs no copies) nothing is recorded.
    fn train(&mut self, mode: bool) {
        for (_, child) in self.children_mut() {
            child.train(mode);
        }
        self.set_training(mode);
    }

    /// `train(false)`.
    fn eval(&mut self) {
        self.train(false);
    }

    /// The direct children, in registration order, with their names.
    fn children(&self) -> Vec<(&str, &dyn Module)> {
        Vec::new()
    }

    /// The direct children, mutably (same order and names as `children`).
    fn children_mut(&mut self) -> Vec<(&str, &mut dyn Module)> {
        Vec::new()
    }

    /// This module's own parameters (not its children's), in registration
    /// order.
    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        Vec::new()
    }

    /// This module's own buffers: non-trainable state, in `state_dict` but
    /// not in `named_parameters`.
    fn own_buffers(&self) -> Vec<(&str, &Buffer)> {
        Vec::new()
    }

    /// Every parameter with its dotted name (`0.block 1.0.bias`): this
    /// module's own first, then each child's, recursively, in registration
    /// order; a parameter reachable under several names (a tie) is listed
    /// once, under the first (PyTorch's `remove_duplicate=True`).
    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        named_unique(self.as_module(), |m| m.own_parameters(), Parameter::id)
    }

    /// The parameters of [`named_parameters`](Module::named_parameters),
    /// each once.
    fn parameters(&self) -> Vec<Parameter> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Every buffer with its dotted name, each once.
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        named_unique(self.as_module(), |m| m.own_buffers(), Buffer::id)
    }

    /// This module (name `""`) and every descendant, pre-order, with dotted
    /// names.
    fn named_modules(&self) -> Vec<(String, &dyn Module)> {
        let mut out = vec![(String::new(), self.as_module())];
        collect_modules(self.as_module(), "", &mut out);
        out
    }

    /// Every parameter and buffer under every name it has (tied parameters
    /// under each), as copies, in the order of `named_parameters` within each
    /// module (parameters, then buffers, then children).
    fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::new();
        for (name, slot, tie) in named_slots(self.as_module()) {
            // An uninitialized parameter has no data to save; PyTorch saves
            // an `UninitializedParameter` object, which we cannot represent
            // as a tensor, so it is left out.
            if let Some(t) = slot.snapshot() {
                sd.push_entry(name, t, tie);
            }
        }
        sd
    }

    /// Every name `state_dict` lists, with its shape and dtype name, whether
    /// the data is materialized or on meta (see [`meta`]); an uninitialized
    /// lazy parameter is left out, as in `state_dict`.
    fn state_dict_shapes(&self) -> Vec<(String, Vec<usize>, &'static str)> {
        named_slots(self.as_module())
            .into_iter()
            .filter_map(|(name, slot, _)| {
                let shape = slot.shape_of()?;
                Some((name, shape, if slot.is_int() { "int64" } else { "float32" }))
            })
            .collect()
    }

    /// Copies the tensors of `state_dict` into this module's parameters and
    /// buffers, by name.
    ///
    /// Every problem is found before anything is copied: on an error the
    /// module is unchanged (PyTorch copies what it can before raising).
    /// A shape mismatch is always an error; missing and unexpected keys are
    /// errors when `strict`, and are returned otherwise. An uninitialized
    /// (lazy) parameter takes the shape from the state dict.
    ///
    /// # Errors
    /// [`Error::LoadStateDict`], with PyTorch's text:
    /// ```text
    /// Error(s) in loading state_dict for Sequential:
    ///     Missing key(s) in state_dict: "2.weight", "2.bias".
    /// ```
    fn load_state_dict(&self, state_dict: &StateDict, strict: bool) -> Result<LoadReport> {
        load_from(self.as_module(), state_dict, strict)
    }

    /// Calls `f` on every module of the tree: children first, then the
    /// module itself, recursively (PyTorch's order). `f` can test a module's
    /// type with [`downcast_ref`](trait.Module.html#method.downcast_ref).
    ///
    /// # Errors
    /// The first error `f` returns (the walk stops there).
    fn apply(&mut self, f: &mut dyn FnMut(&mut dyn Module) -> Result<()>) -> Result<()> {
        for (_, child) in self.children_mut() {
            child.apply(f)?;
        }
        f(self.as_module_mut())
    }

    /// Clears the gradient of every parameter (PyTorch's
    /// `zero_grad(set_to_none=True)`).
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.clear_grad();
        }
    }
}

/// Every parameter and buffer slot of the tree under every name it has
/// (parameters, then buffers, then children, recursively), each with the
/// first name of its storage if it is an alias (a tied parameter's later
/// name), without copying any data. Uninitialized slots are included.
pub(crate) fn named_slots(root: &dyn Module) -> Vec<(String, Shared, Option<String>)> {
    let mut out = Vec::new();
    let mut first_name: HashMap<usize, String> = HashMap::new();
    walk(root, "", &mut |prefix, m| {
        let params = m.own_parameters().into_iter().map(|(n, p)| (n, p.slot()));
        let buffers = m.own_buffers().into_iter().map(|(n, b)| (n, b.slot()));
        for (name, slot) in params.chain(buffers) {
            let full = format!("{prefix}{name}");
            let tie = first_name.get(&slot.identity()).cloned();
            if tie.is_none() && slot.shape_of().is_some() {
                first_name.insert(slot.identity(), full.clone());
            }
            out.push((full, slot.clone(), tie));
        }
    });
    out
}

/// Where [`load_from`] takes tensors from: a [`StateDict`], or a file read
/// in place (`io::safetensors::load_module`).
pub(crate) trait LoadSource {
    /// Every name the source has.
    fn names(&self) -> Vec<&str>;
    /// The shape of `name`, if present.
    fn shape_of(&self, name: &str) -> Option<&[usize]>;
    /// Copies `name` (present, with a shape that suits `slot`) into `slot`.
    fn load_into(&self, name: &str, slot: &Shared) -> Result<()>;
}

impl LoadSource for StateDict {
    fn names(&self) -> Vec<&str> {
        self.keys().collect()
    }
    fn shape_of(&self, name: &str) -> Option<&[usize]> {
        self.get_any(name).map(AnyTensor::shape)
    }
    fn load_into(&self, name: &str, slot: &Shared) -> Result<()> {
        slot.load(self.get_any(name).expect("checked by load_from"));
        Ok(())
    }
}

/// [`Module::load_state_dict`] from any source: every key and shape is
/// checked before anything is copied.
pub(crate) fn load_from(
    module: &dyn Module,
    source: &dyn LoadSource,
    strict: bool,
) -> Result<LoadReport> {
    let targets = named_slots(module);
    let mut missing = Vec::new();
    let mut size_mismatch = Vec::new();
    let mut copies = Vec::new();
    let known: HashSet<&str> = targets.iter().map(|(n, _, _)| n.as_str()).collect();
    for (name, slot, _) in &targets {
        match source.shape_of(name) {
            None => missing.push(name.clone()),
            Some(src) => match slot.shape_of() {
                Some(shape) if shape != src => {
                    size_mismatch.push((name.clone(), src.to_vec(), shape));
                }
                _ => copies.push((name.as_str(), slot)),
            },
        }
    }
    let unexpected: Vec<String> = source
        .names()
        .into_iter()
        .filter(|k| !known.contains(k))
        .map(str::to_string)
        .collect();
    if !size_mismatch.is_empty() || (strict && (!missing.is_empty() || !unexpected.is_empty())) {
        let (missing, unexpected) = if strict {
            (missing, unexpected)
        } else {
            (Vec::new(), Vec::new())
        };
        return Err(Error::LoadStateDict {
            module: module.type_name().to_string(),
            missing,
            unexpected,
            size_mismatch,
        });
    }
    for (name, slot) in copies {
        source.load_into(name, slot)?;
    }
    Ok(LoadReport {
        missing_keys: missing,
        unexpected_keys: unexpected,
    })
}

/// Every handle `own` lists in the tree, with its dotted name, each
/// identity once (first name wins).
fn named_unique<H: Clone>(
    root: &dyn Module,
    own: impl Fn(&dyn Module) -> Vec<(&str, &H)>,
    id: impl Fn(&H) -> usize,
) -> Vec<(String, H)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    walk(root, "", &mut |prefix, m| {
        for (name, h) in own(m) {
            if seen.insert(id(h)) {
                out.push((format!("{prefix}{name}"), h.clone()));
            }
        }
    });
    out
}

/// Calls `f(prefix, module)` for `m` and every descendant, pre-order; the
/// prefix ends in `.` except at the root.
fn walk(m: &dyn Module, prefix: &str, f: &mut dyn FnMut(&str, &dyn Module)) {
    f(prefix, m);
    for (name, child) in m.children() {
        walk(child, &format!("{prefix}{name}."), f);
    }
}

fn collect_modules<'a>(m: &'a dyn Module, prefix: &str, out: &mut Vec<(String, &'a dyn Module)>) {
    for (name, child) in m.children() {
        let path = format!("{prefix}{name}");
        out.push((path.clone(), child));
        collect_modules(child, &format!("{path}."), out);
    }
}

impl dyn Module {
    /// The module as its concrete type, if it is a `T` ("is this a Linear?").
    pub fn downcast_ref<T: Module>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }

    /// The module as its concrete type, mutably, if it is a `T`.
    pub fn downcast_mut<T: Module>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut()
    }

    /// Whether the module is a `T`.
    pub fn is<T: Module>(&self) -> bool {
        self.as_any().is::<T>()
    }

    /// The child at position `index`.
    ///
    /// # Errors
    /// [`Error::ChildIndex`] if there is no such child.
    pub fn child(&self, index: usize) -> Result<&dyn Module> {
        let children = self.children();
        let len = children.len();
        children
            .into_iter()
            .nth(index)
            .map(|(_, c)| c)
            .ok_or(Error::ChildIndex { index, len })
    }

    /// The child at position `index`, mutably.
    ///
    /// # Errors
    /// [`Error::ChildIndex`] if there is no such child.
    pub fn child_mut(&mut self, index: usize) -> Result<&mut dyn Module> {
        let children = self.children_mut();
        let len = children.len();
        children
            .into_iter()
            .nth(index)
            .map(|(_, c)| c)
            .ok_or(Error::ChildIndex { index, len })
    }

    /// The module as a `T`.
    ///
    /// # Errors
    /// [`Error::ModuleType`] naming both types.
    pub fn to<T: Module>(&self) -> Result<&T> {
        let found = self.type_name().to_string();
        self.downcast_ref().ok_or(Error::ModuleType {
            path: String::new(),
            expected: short_type_name::<T>(),
            found,
        })
    }

    /// The module as a mutable `T`.
    ///
    /// # Errors
    /// [`Error::ModuleType`] naming both types.
    pub fn to_mut<T: Module>(&mut self) -> Result<&mut T> {
        let found = self.type_name().to_string();
        self.downcast_mut().ok_or(Error::ModuleType {
            path: String::new(),
            expected: short_type_name::<T>(),
            found,
        })
    }
}

/// `nninit::nn::Linear` → `Linear`.
pub(crate) fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// `module[i]`: the `i`-th child, as for a Python `Sequential`.
///
/// # Panics
/// If there is no such child, like slice indexing; use
/// [`child`](trait.Module.html#method.child) for a `Result`.
impl Index<usize> for dyn Module {
    type Output = dyn Module;
    fn index(&self, index: usize) -> &dyn Module {
        match self.child(index) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }
}

impl IndexMut<usize> for dyn Module {
    fn index_mut(&mut self, index: usize) -> &mut dyn Module {
        match self.child_mut(index) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The printed form of a module, as PyTorch's `repr`:
/// `Name(extra)` for a leaf, or the children indented one per line.
pub fn repr(m: &dyn Module) -> String {
    let extra = m.extra_repr();
    let extra_lines: Vec<&str> = if extra.is_empty() {
        Vec::new()
    } else {
        extra.split('\n').collect()
    };
    let child_lines: Vec<String> = m
        .children()
        .into_iter()
        .map(|(name, c)| format!("({name}): {}", add_indent(&repr(c), 2)))
        .collect();
    let mut s = format!("{}(", m.type_name());
    if extra_lines.len() == 1 && child_lines.is_empty() {
        s.push_str(extra_lines[0]);
    } else if !extra_lines.is_empty() || !child_lines.is_empty() {
        let lines: Vec<&str> = extra_lines
            .iter()
            .copied()
            .chain(child_lines.iter().map(String::as_str))
            .collect();
        s.push_str("\n  ");
        s.push_str(&lines.join("\n  "));
        s.push('\n');
    }
    s.push(')');
    s
}

/// Indents every line but the first by `n` spaces.
fn add_indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut lines = s.split('\n');
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(l);
    }
    out
}

impl fmt::Display for dyn Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self))
    }
}

impl fmt::Debug for dyn Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self))
    }
}

display_as_module!(Linear, ReLU, Sequential);

/// What a non-strict [`Module::load_state_dict`] did not match (PyTorch's
/// `_IncompatibleKeys`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Keys of the model that the state dict did not have.
    pub missing_keys: Vec<String>,
    /// Keys of the state dict that the model does not have.
    pub unexpected_keys: Vec<String>,
}

/// An ordered map from dotted names to tensors: a module's state.
///
/// Made by [`Module::state_dict`] (copies of the data, so later training
/// does not change it), or built by hand with [`insert`](StateDict::insert).
/// Entries are [`AnyTensor`]s: `float32` for parameters and most buffers,
/// `int64` for integer buffers (BatchNorm's `num_batches_tracked`);
/// [`get`](StateDict::get) and indexing give the `float32` ones as
/// [`Tensor`]s, [`get_any`](StateDict::get_any) any entry.
/// It remembers which names were the same storage in the module (a tied
/// parameter is present under each of its names): see
/// [`tied_to`](StateDict::tied_to). Prints like PyTorch's `OrderedDict`.
///
/// Equality compares names, values and ties, not order (a safetensors file
/// does not keep the order).
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    entries: Vec<(String, AnyTensor)>,
    /// For an entry that is an alias: the index of the first name of its
    /// storage.
    ties: Vec<Option<usize>>,
    index: HashMap<String, usize>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> StateDict {
        StateDict::default()
    }

    fn push_entry(&mut self, name: String, t: AnyTensor, tie: Option<String>) {
        let tie = tie.and_then(|n| self.index.get(&n).copied());
        self.index.insert(name.clone(), self.entries.len());
        self.entries.push((name, t));
        self.ties.push(tie);
    }

    /// Inserts or replaces `name` (an untied entry, appended at the end if
    /// new), a [`Tensor`] or an [`IntTensor`](crate::IntTensor). Returns the
    /// previous entry.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        tensor: impl Into<AnyTensor>,
    ) -> Option<AnyTensor> {
        let (name, tensor) = (name.into(), tensor.into());
        match self.index.get(&name) {
            Some(&i) => {
                self.ties[i] = None;
                Some(std::mem::replace(&mut self.entries[i].1, tensor))
            }
            None => {
                self.push_entry(name, tensor, None);
                None
            }
        }
    }

    /// Records that `alias` is the same storage as `target` (both must be
    /// present; `target` is not itself an alias). Returns whether it was
    /// recorded.
    pub fn tie(&mut self, alias: &str, target: &str) -> bool {
        match (self.index.get(alias), self.index.get(target)) {
            (Some(&a), Some(&t)) if a != t && self.ties[t].is_none() => {
                self.ties[a] = Some(t);
                true
            }
            _ => false,
        }
    }

    /// The `float32` tensor named `name` (`None` if absent or `int64`).
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.get_any(name).and_then(AnyTensor::as_f32)
    }

    /// The entry named `name`, of either dtype.
    pub fn get_any(&self, name: &str) -> Option<&AnyTensor> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    /// The first name of the storage `name` shares, if `name` is an alias of
    /// an earlier entry (a tied parameter's later name).
    pub fn tied_to(&self, name: &str) -> Option<&str> {
        let i = *self.index.get(name)?;
        self.ties[i].map(|t| self.entries[t].0.as_str())
    }

    /// Whether `name` is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// `(name, tensor)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AnyTensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl StateDict {
    /// For every name, the smallest name of the group of names sharing its
    /// storage.
    fn group_keys(&self) -> HashMap<&str, &str> {
        let mut smallest: HashMap<&str, &str> = HashMap::new();
        for name in self.keys() {
            let root = self.tied_to(name).unwrap_or(name);
            let e = smallest.entry(root).or_insert(name);
            *e = (*e).min(name);
        }
        self.keys()
            .map(|k| (k, smallest[self.tied_to(k).unwrap_or(k)]))
            .collect()
    }
}

impl PartialEq for StateDict {
    fn eq(&self, other: &StateDict) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let (mine, theirs) = (self.group_keys(), other.group_keys());
        self.iter().all(|(name, t)| {
            other.get_any(name) == Some(t) && theirs.get(name) == Some(&mine[name])
        })
    }
}

/// `state_dict["2.bias"]`: a `float32` entry.
///
/// # Panics
/// If the name is absent, like `HashMap`'s index, or names an `int64` entry;
/// use [`get`](StateDict::get) or [`get_any`](StateDict::get_any) for an
/// `Option`.
impl Index<&str> for StateDict {
    type Output = Tensor;
    fn index(&self, name: &str) -> &Tensor {
        match self.get_any(name) {
            Some(AnyTensor::F32(t)) => t,
            Some(AnyTensor::I64(_)) => {
                panic!("state dict entry {name:?} is int64; use get_any")
            }
            None => panic!("no key {name:?} in the state dict"),
        }
    }
}

impl fmt::Display for StateDict {
    /// `OrderedDict([('weight', tensor(...)), ('bias', tensor(...))])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderedDict([")?;
        for (i, (name, t)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "('{name}', {t})")?;
        }
        f.write_str("])")
    }
}
