//! [`Sequential`]: modules applied in order.

use std::ops::{Index, IndexMut};

use super::Module;
use crate::error::{Error, ModuleNameProblem, Result};
use crate::tensor::Tensor;

/// Children applied one after the other: PyTorch's `nn.Sequential`.
///
/// Children added with [`push`](Sequential::push) / [`with`](Sequential::with)
/// are named by their position (`0`, `1`, …); [`add_module`](Sequential::add_module)
/// gives a name of your own (which may hold spaces, not `.`). `net[i]` is the
/// `i`-th child as `dyn Module`, so nested access reads as in Python:
/// `rgnet[0][1][0]`; [`child`](Sequential::child) gives a concrete type.
///
/// ```
/// use nninit::nn::{Linear, Module, ReLU, Sequential};
///
/// let mut block = Sequential::new();
/// block.add_module("block 0", Linear::new(4, 8).unwrap()).unwrap();
/// block.add_module("act", ReLU::new()).unwrap();
/// assert_eq!(
///     block.add_module("a.b", ReLU::new()).unwrap_err().to_string(),
///     "module name can't contain \".\", got: a.b"
/// );
/// let lin: &Linear = block.child(0).unwrap();
/// assert_eq!(lin.in_features(), Some(4));
/// assert!(block[1].is::<ReLU>());
/// ```
#[derive(Default)]
pub struct Sequential {
    children: Vec<(String, Box<dyn Module>)>,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::repr(self))
    }
}

impl Sequential {
    /// An empty container.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends `module` under the next free position number.
    pub fn push(&mut self, module: impl Module) -> &mut Sequential {
        self.push_boxed(Box::new(module))
    }

    /// Appends a boxed module under the next free position number.
    pub fn push_boxed(&mut self, module: Box<dyn Module>) -> &mut Sequential {
        // `len` is free unless a custom name took it; then count up.
        let mut i = self.children.len();
        while self.position(&i.to_string()).is_some() {
            i += 1;
        }
        self.children.push((i.to_string(), module));
        self
    }

    /// `push`, by value, for building: `Sequential::new().with(a).with(b)`.
    pub fn with(mut self, module: impl Module) -> Sequential {
        self.push(module);
        self
    }

    /// Appends `module` under `name` (PyTorch's `add_module`).
    ///
    /// # Errors
    /// [`Error::ModuleName`] if `name` is empty, holds a `.`, or is taken.
    pub fn add_module(&mut self, name: &str, module: impl Module) -> Result<&mut Sequential> {
        let problem = if name.is_empty() {
            Some(ModuleNameProblem::Empty)
        } else if name.contains('.') {
            Some(ModuleNameProblem::Dot)
        } else if self.position(name).is_some() {
            Some(ModuleNameProblem::Duplicate)
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::ModuleName {
                name: name.to_string(),
                problem,
            });
        }
        self.children.push((name.to_string(), Box::new(module)));
        Ok(self)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.children.iter().position(|(n, _)| n == name)
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The child at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&dyn Module> {
        self.children.get(index).map(|(_, m)| &**m)
    }

    /// The child at `index`, mutably, if any.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut dyn Module> {
        match self.children.get_mut(index) {
            Some((_, m)) => Some(&mut **m),
            None => None,
        }
    }

    /// The child named `name`, if any.
    pub fn get_named(&self, name: &str) -> Option<&dyn Module> {
        self.position(name).map(|i| &*self.children[i].1)
    }

    /// The child at `index` as its concrete type `T`.
    ///
    /// # Errors
    /// [`Error::ChildIndex`] past the end, [`Error::ModuleType`] if the child
    /// is not a `T`.
    pub fn child<T: Module>(&self, index: usize) -> Result<&T> {
        let len = self.len();
        let (name, m) = self
            .children
            .get(index)
            .ok_or(Error::ChildIndex { index, len })?;
        m.downcast_ref().ok_or_else(|| Error::ModuleType {
            path: name.clone(),
            expected: super::short_type_name::<T>(),
            found: m.type_name().to_string(),
        })
    }

    /// The child at `index` as a mutable `T`.
    ///
    /// # Errors
    /// As [`Sequential::child`].
    pub fn child_mut<T: Module>(&mut self, index: usize) -> Result<&mut T> {
        let len = self.len();
        let (name, m) = self
            .children
            .get_mut(index)
            .ok_or(Error::ChildIndex { index, len })?;
        let found = m.type_name().to_string();
        let path = name.clone();
        m.downcast_mut().ok_or(Error::ModuleType {
            path,
            expected: super::short_type_name::<T>(),
            found,
        })
    }
}

impl Module for Sequential {
    fn type_name(&self) -> &'static str {
        "Sequential"
    }

    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let Some(((_, first), rest)) = self.children.split_first_mut() else {
            return Ok(input.clone());
        };
        let mut x = first.forward(input)?;
        for (_, m) in rest {
            x = m.forward(&x)?;
        }
        Ok(x)
    }

    /// Backward through the children in reverse order.
    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let mut children = self.children.iter_mut().rev();
        let Some((_, last)) = children.next() else {
            return Ok(grad_output.clone());
        };
        let mut g = last.backward(grad_output)?;
        for (_, m) in children {
            g = m.backward(&g)?;
        }
        Ok(g)
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        self.children
            .iter()
            .map(|(n, m)| (n.as_str(), &**m))
            .collect()
    }

    fn children_mut(&mut self) -> Vec<(&str, &mut dyn Module)> {
        self.children
            .iter_mut()
            .map(|(n, m)| (n.as_str(), &mut **m as &mut dyn Module))
            .collect()
    }
}

/// `net[i]`, the `i`-th child.
///
/// # Panics
/// Past the end, like slice indexing ([`Sequential::get`] returns an
/// `Option`).
impl Index<usize> for Sequential {
    type Output = dyn Module;
    fn index(&self, index: usize) -> &dyn Module {
        match self.get(index) {
            Some(m) => m,
            None => panic!(
                "index {index} is out of range for a Sequential of {}",
                self.len()
            ),
        }
    }
}

impl IndexMut<usize> for Sequential {
    fn index_mut(&mut self, index: usize) -> &mut dyn Module {
        let len = self.len();
        match self.get_mut(index) {
            Some(m) => m,
            None => panic!("index {index} is out of range for a Sequential of {len}"),
        }
    }
}
