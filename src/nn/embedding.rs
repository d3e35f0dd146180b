//! [`Embedding`]: a lookup table of vectors, indexed by integers.

use super::{Module, Parameter};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::rng::Generator;
use crate::tensor::{IntTensor, Tensor};

/// A table of `num_embeddings` vectors of size `embedding_dim`: PyTorch's
/// `nn.Embedding(num_embeddings, embedding_dim, padding_idx=None)`.
///
/// Weight `[num_embeddings, embedding_dim]`. **Default init** (PyTorch's):
/// `normal_(0, 1)`, then the `padding_idx` row zeroed (with a torch-exact
/// generator, PyTorch's numbers). Its input is integer indices, an
/// [`IntTensor`] ([`Embedding::forward_indices`]; `forward` on a float
/// tensor is PyTorch's dtype error). Output: the indices' shape plus
/// `[embedding_dim]`. Backward adds each output row's gradient to its
/// table row, except the padding row, which gets none.
///
/// ```
/// use nninit::nn::{Embedding, Module};
/// use nninit::{Generator, IntTensor};
///
/// let mut e = Embedding::new(10, 3, Some(0), Some(&mut Generator::new(1))).unwrap();
/// assert_eq!(e.to_string(), "Embedding(10, 3, padding_idx=0)");
/// let y = e.forward_indices(&IntTensor::from_vec(vec![0, 4, 4], &[3]).unwrap()).unwrap();
/// assert_eq!(y.shape(), &[3, 3]);
/// assert_eq!(y.row(0).unwrap(), &[0.0; 3]);
/// let err = e.forward_indices(&IntTensor::scalar(10)).unwrap_err();
/// assert!(err.to_string().starts_with("index out of range in self"));
/// ```
#[derive(Debug, Clone)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Parameter,
    num_embeddings: usize,
    embedding_dim: usize,
    padding_idx: Option<usize>,
    training: bool,
    /// Indices of the training forwards not yet consumed by a backward.
    inputs: Vec<IntTensor>,
}

impl Embedding {
    /// `Embedding(num_embeddings, embedding_dim, padding_idx)`, initialized
    /// from `generator` (the global one if `None`). A negative `padding_idx`
    /// counts from the end, as in PyTorch.
    ///
    /// # Errors
    /// [`Error::PaddingIdx`] for a `padding_idx` outside
    /// `-num_embeddings..num_embeddings`; shape errors for impossible sizes.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<i64>,
        generator: Option<&mut Generator>,
    ) -> Result<Embedding> {
        let padding_idx = padding_idx
            .map(|p| {
                let n = num_embeddings as i64;
                if (-n..n).contains(&p) {
                    Ok(if p < 0 { p + n } else { p } as usize)
                } else {
                    Err(Error::PaddingIdx {
                        padding_idx: p,
                        num_embeddings,
                    })
                }
            })
            .transpose()?;
        let normal = Init::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let shape = [num_embeddings, embedding_dim];
        let weight = if super::meta::is_on_meta() {
            Parameter::meta(normal.defer(&shape, generator)?.with_zero_row(padding_idx))
        } else {
            let mut weight = normal.tensor(&shape, generator)?;
            if let Some(p) = padding_idx {
                weight.row_mut(p)?.fill(0.0);
            }
            Parameter::new(weight)
        };
        Ok(Embedding {
            weight,
            num_embeddings,
            embedding_dim,
            padding_idx,
            training: false,
            inputs: Vec::new(),
        })
    }

    /// `num_embeddings`.
    pub fn num_embeddings(&self) -> usize {
        self.num_embeddings
    }

    /// `embedding_dim`.
    pub fn embedding_dim(&self) -> usize {
        self.embedding_dim
    }

    /// The padding row, if any (non-negative).
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }

    /// The rows of the table at `indices`: shape `indices.shape() +
    /// [embedding_dim]`.
    ///
    /// # Errors
    /// [`Error::EmbeddingIndex`] for an index outside `0..num_embeddings`
    /// (PyTorch's `index out of range in self`).
    pub fn forward_indices(&mut self, indices: &IntTensor) -> Result<Tensor> {
        for &i in indices.as_slice() {
            if i < 0 || i as u64 >= self.num_embeddings as u64 {
                return Err(Error::EmbeddingIndex {
                    index: i,
                    num_embeddings: self.num_embeddings,
                });
            }
        }
        let weight = self.weight.data()?;
        let d = self.embedding_dim;
        let mut shape = indices.shape().to_vec();
        shape.push(d);
        let mut out = Vec::with_capacity(indices.numel() * d);
        for &i in indices.as_slice() {
            out.extend_from_slice(&weight.as_slice()[i as usize * d..(i as usize + 1) * d]);
        }
        drop(weight);
        if self.training {
            self.inputs.push(indices.clone());
        }
        Tensor::from_vec(out, &shape)
    }
}

impl Module for Embedding {
    fn type_name(&self) -> &'static str {
        "Embedding"
    }

    fn extra_repr(&self) -> String {
        let mut s = format!("{}, {}", self.num_embeddings, self.embedding_dim);
        if let Some(p) = self.padding_idx {
            s += &format!(", padding_idx={p}");
        }
        s
    }

    /// A float input is an error, as in PyTorch: use
    /// [`forward_indices`](Embedding::forward_indices).
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let _ = input;
        Err(Error::Dtype {
            what: "the indices of Embedding".to_string(),
            expected: "int64",
            found: "float32",
        })
    }

    /// Accumulates the table's gradient from the latest training forward;
    /// returns an empty `[0]` tensor (no gradient flows into integer
    /// indices).
    fn backward(&mut self, grad_output: &Tensor) -> Result<Tensor> {
        let idx = self.inputs.pop().ok_or(Error::BackwardBeforeForward {
            module: "Embedding".to_string(),
        })?;
        let d = self.embedding_dim;
        let mut expected = idx.shape().to_vec();
        expected.push(d);
        super::check_grad_shape("grad_output of Embedding", &expected, grad_output.shape())?;
        let mut dw = Tensor::zeros(&[self.num_embeddings, d])?;
        for (k, &i) in idx.as_slice().iter().enumerate() {
            if Some(i as usize) == self.padding_idx {
                continue;
            }
            let row = &grad_output.as_slice()[k * d..(k + 1) * d];
            for (w, g) in dw.row_mut(i as usize)?.iter_mut().zip(row) {
                *w += g;
            }
        }
        self.weight.accumulate_grad(&dw)?;
        Tensor::zeros(&[0])
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        if !training {
            self.inputs.clear();
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        vec![("weight", &self.weight)]
    }
}

super::display_as_module!(Embedding);
