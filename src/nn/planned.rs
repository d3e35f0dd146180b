//! Models described by a plan (names, shapes, initializers) rather than by
//! layers: what `nninit init` builds, on meta, for a Hugging Face Llama
//! config ([`PlannedModel::llama`]) or any architecture given as JSON
//! ([`PlannedModel::from_plan_json`]).

use serde_json::Value;

use super::{Module, Parameter};
use crate::error::{Error, Result};
use crate::init::{FanMode, Init, Nonlinearity};
use crate::rng::Generator;
use crate::tensor::Tensor;

/// One tensor of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// The dotted state-dict name.
    pub name: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// How it is initialized.
    pub init: Init,
    /// A row zeroed after the init (an embedding's padding row).
    pub zero_row: Option<usize>,
}

/// A module that is a list of named parameters (no forward): a checkpoint
/// to write. Built on meta, each parameter takes its stream in plan order
/// at build time and is generated as it is written (its parameters are
/// always on meta, whatever [`meta::on_meta`](super::meta::on_meta) says).
///
/// ```
/// use nninit::nn::{Module, planned::PlannedModel};
/// use nninit::Generator;
///
/// let plan = r#"{"tensors": [
///     {"name": "embed.weight", "shape": [100, 16], "init": {"normal": {"std": 0.02}}},
///     {"name": "norm.weight", "shape": [16], "init": "ones"}
/// ]}"#;
/// let m = PlannedModel::from_plan_json(plan, Some(&mut Generator::new(0))).unwrap();
/// let names: Vec<String> = m.state_dict_shapes().into_iter().map(|(n, _, _)| n).collect();
/// assert_eq!(names, ["embed.weight", "norm.weight"]);
/// ```
#[derive(Debug)]
pub struct PlannedModel {
    params: Vec<(String, Parameter)>,
}

impl PlannedModel {
    /// The model of `specs`, on meta, drawing one stream per random tensor
    /// from `generator` in order.
    ///
    /// # Errors
    /// The initializers' parameter and shape errors; a duplicate name
    /// ([`Error::Format`]).
    pub fn new(
        specs: &[TensorSpec],
        mut generator: Option<&mut Generator>,
    ) -> Result<PlannedModel> {
        let mut seen = std::collections::HashSet::new();
        let mut params = Vec::with_capacity(specs.len());
        for s in specs {
            if !seen.insert(s.name.as_str()) {
                return Err(plan_error(format!("tensor {:?} appears twice", s.name)));
            }
            let deferred = s
                .init
                .defer(&s.shape, generator.as_deref_mut())?
                .with_zero_row(s.zero_row);
            params.push((s.name.clone(), Parameter::meta(deferred)));
        }
        Ok(PlannedModel { params })
    }

    /// The model a plan in JSON describes:
    /// `{"tensors": [{"name", "shape", "init"}, ...]}`, where `init` is one
    /// of `"zeros"`, `"ones"`, `{"constant": v}`, `{"uniform": {"a", "b"}}`,
    /// `{"normal": {"mean", "std"}}`, `{"trunc_normal": {"mean", "std", "a",
    /// "b"}}`, `{"xavier_uniform": {"gain"}}`, `{"xavier_normal": {"gain"}}`,
    /// `{"kaiming_uniform": {"a", "mode", "nonlinearity"}}`,
    /// `{"kaiming_normal": {...}}`, `{"orthogonal": {"gain"}}` (missing
    /// fields take PyTorch's defaults), and optionally `"zero_row": r`.
    ///
    /// # Errors
    /// [`Error::Format`] naming what is wrong, and [`PlannedModel::new`]'s.
    pub fn from_plan_json(text: &str, generator: Option<&mut Generator>) -> Result<PlannedModel> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| plan_error(format!("not valid JSON: {e}")))?;
        let tensors = v
            .get("tensors")
            .and_then(Value::as_array)
            .ok_or_else(|| plan_error("no \"tensors\" array".into()))?;
        let mut specs = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| plan_error(format!("tensor {i} has no \"name\"")))?;
            let shape = t
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|d| d.as_u64().map(|d| d as usize))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    plan_error(format!(
                        "tensor {name:?}: \"shape\" must be a list of sizes"
                    ))
                })?;
            let init = parse_init(t.get("init").unwrap_or(&Value::Null))
                .map_err(|e| plan_error(format!("tensor {name:?}: {e}")))?;
            let zero_row = t
                .get("zero_row")
                .and_then(Value::as_u64)
                .map(|r| r as usize);
            specs.push(TensorSpec {
                name: name.to_string(),
                shape,
                init,
                zero_row,
            });
        }
        PlannedModel::new(&specs, generator)
    }

    /// A Hugging Face Llama-family model (`LlamaForCausalLM`) for its
    /// `config.json`, with `LlamaPreTrainedModel._init_weights`' init:
    /// `normal(0, initializer_range)` for the linear and embedding weights
    /// (the `pad_token_id` row of the embedding zeroed), zeros for biases,
    /// ones for the RMSNorm weights. Names and shapes are transformers':
    /// `model.embed_tokens.weight`, `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`,
    /// `model.layers.{i}.mlp.{gate,up,down}_proj.weight`,
    /// `model.layers.{i}.{input,post_attention}_layernorm.weight`,
    /// `model.norm.weight`, and `lm_head.weight` unless
    /// `tie_word_embeddings`.
    ///
    /// # Errors
    /// [`Error::Format`] naming a missing or malformed config field.
    pub fn llama(config: &Value, generator: Option<&mut Generator>) -> Result<PlannedModel> {
        PlannedModel::new(&llama_specs(config)?, generator)
    }

    /// The number of parameter elements.
    pub fn numel(&self) -> usize {
        self.params
            .iter()
            .map(|(_, p)| p.shape().map_or(0, |s| s.iter().product()))
            .sum()
    }
}

fn plan_error(reason: String) -> Error {
    Error::Format {
        format: "plan",
        reason,
    }
}

fn parse_init(v: &Value) -> std::result::Result<Init, String> {
    let num = |o: &Value, k: &str, d: f64| -> std::result::Result<f64, String> {
        match o.get(k) {
            None => Ok(d),
            Some(x) => x.as_f64().ok_or(format!("{k:?} must be a number")),
        }
    };
    let text = |o: &Value, k: &str, d: &str| -> String {
        o.get(k).and_then(Value::as_str).unwrap_or(d).to_string()
    };
    match v {
        Value::String(s) if s == "zeros" => Ok(Init::Constant { val: 0.0 }),
        Value::String(s) if s == "ones" => Ok(Init::Constant { val: 1.0 }),
        Value::Object(m) if m.len() == 1 => {
            let (kind, o) = m.iter().next().expect("one entry");
            Ok(match kind.as_str() {
                "constant" => Init::Constant {
                    val: o.as_f64().ok_or("constant must be a number")?,
                },
                "uniform" => Init::Uniform {
                    a: num(o, "a", 0.0)?,
                    b: num(o, "b", 1.0)?,
                },
                "normal" => Init::Normal {
                    mean: num(o, "mean", 0.0)?,
                    std: num(o, "std", 1.0)?,
                },
                "trunc_normal" => Init::TruncNormal {
                    mean: num(o, "mean", 0.0)?,
                    std: num(o, "std", 1.0)?,
                    a: num(o, "a", -2.0)?,
                    b: num(o, "b", 2.0)?,
                },
                "xavier_uniform" => Init::XavierUniform {
                    gain: num(o, "gain", 1.0)?,
                },
                "xavier_normal" => Init::XavierNormal {
                    gain: num(o, "gain", 1.0)?,
                },
                "orthogonal" => Init::Orthogonal {
                    gain: num(o, "gain", 1.0)?,
                },
                "kaiming_uniform" | "kaiming_normal" => {
                    let a = num(o, "a", 0.0)?;
                    let mode: FanMode = text(o, "mode", "fan_in")
                        .parse()
                        .map_err(|e: Error| e.to_string())?;
                    let nonlinearity: Nonlinearity = text(o, "nonlinearity", "leaky_relu")
                        .parse()
                        .map_err(|e: Error| e.to_string())?;
                    if kind == "kaiming_uniform" {
                        Init::KaimingUniform {
                            a,
                            mode,
                            nonlinearity,
                        }
                    } else {
                        Init::KaimingNormal {
                            a,
                            mode,
                            nonlinearity,
                        }
                    }
                }
                other => return Err(format!("unknown init {other:?}")),
            })
        }
        other => Err(format!(
            "\"init\" must be \"zeros\", \"ones\" or {{kind: options}}, not {other}"
        )),
    }
}

/// The tensors of a Llama-family model (see [`PlannedModel::llama`]).
fn llama_specs(c: &Value) -> Result<Vec<TensorSpec>> {
    let int = |k: &str| -> Result<usize> {
        c.get(k)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| plan_error(format!("config: {k:?} must be a positive integer")))
    };
    let vocab = int("vocab_size")?;
    let hidden = int("hidden_size")?;
    let inter = int("intermediate_size")?;
    let layers = int("num_hidden_layers")?;
    let heads = int("num_attention_heads")?;
    let kv_heads = c
        .get("num_key_value_heads")
        .and_then(Value::as_u64)
        .map_or(heads, |v| v as usize);
    if heads == 0 || kv_heads == 0 {
        return Err(plan_error(
            "config: attention heads must be positive".into(),
        ));
    }
    let head_dim = match c.get("head_dim").and_then(Value::as_u64) {
        Some(d) => d as usize,
        None if hidden.is_multiple_of(heads) => hidden / heads,
        None => {
            return Err(plan_error(format!(
                "config: hidden_size {hidden} is not divisible by num_attention_heads {heads}"
            )));
        }
    };
    let std = c
        .get("initializer_range")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    let tied = c
        .get("tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let pad = c
        .get("pad_token_id")
        .and_then(Value::as_u64)
        .map(|p| p as usize);
    let normal = Init::Normal { mean: 0.0, std };
    let ones = Init::Constant { val: 1.0 };
    let zeros = Init::Constant { val: 0.0 };
    let spec = |name: String, shape: Vec<usize>, init: &Init| TensorSpec {
        name,
        shape,
        init: init.clone(),
        zero_row: None,
    };
    let mut v = vec![TensorSpec {
        zero_row: pad.filter(|&p| p < vocab),
        ..spec(
            "model.embed_tokens.weight".into(),
            vec![vocab, hidden],
            &normal,
        )
    }];
    let (q, kv) = (heads * head_dim, kv_heads * head_dim);
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        for (proj, out, inp) in [
            ("q_proj", q, hidden),
            ("k_proj", kv, hidden),
            ("v_proj", kv, hidden),
            ("o_proj", hidden, q),
        ] {
            v.push(spec(
                format!("{p}.self_attn.{proj}.weight"),
                vec![out, inp],
                &normal,
            ));
            if flag("attention_bias") {
                v.push(spec(
                    format!("{p}.self_attn.{proj}.bias"),
                    vec![out],
                    &zeros,
                ));
            }
        }
        for (proj, out, inp) in [
            ("gate_proj", inter, hidden),
            ("up_proj", inter, hidden),
            ("down_proj", hidden, inter),
        ] {
            v.push(spec(
                format!("{p}.mlp.{proj}.weight"),
                vec![out, inp],
                &normal,
            ));
            if flag("mlp_bias") {
                v.push(spec(format!("{p}.mlp.{proj}.bias"), vec![out], &zeros));
            }
        }
        v.push(spec(
            format!("{p}.input_layernorm.weight"),
            vec![hidden],
            &ones,
        ));
        v.push(spec(
            format!("{p}.post_attention_layernorm.weight"),
            vec![hidden],
            &ones,
        ));
    }
    v.push(spec("model.norm.weight".into(), vec![hidden], &ones));
    if !tied {
        v.push(spec("lm_head.weight".into(), vec![vocab, hidden], &normal));
    }
    Ok(v)
}

impl Module for PlannedModel {
    fn type_name(&self) -> &'static str {
        "PlannedModel"
    }

    fn extra_repr(&self) -> String {
        format!("{} tensors, {} parameters", self.params.len(), self.numel())
    }

    /// A plan has no forward: [`Error::NoForward`].
    fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let _ = input;
        Err(Error::NoForward {
            module: "PlannedModel",
        })
    }

    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        self.params.iter().map(|(n, p)| (n.as_str(), p)).collect()
    }
}
