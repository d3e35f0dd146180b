//! SPEC section 1, items 1 to 7: every step of the chapter's tour, asserted.
//! The builders and init functions are the example's own (`examples/chapter.rs`).

#[path = "../examples/chapter.rs"]
#[allow(dead_code)]
mod chapter;

use nninit::nn::{Linear, Module, Parameter, ReLU, Sequential};
use nninit::{Error, Generator, Tensor, init};

fn names(params: Vec<(String, Parameter)>) -> Vec<(String, Vec<usize>)> {
    params
        .into_iter()
        .map(|(n, p)| (n, p.shape().unwrap()))
        .collect()
}

fn s(v: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    v.iter()
        .map(|(n, sh)| (n.to_string(), sh.to_vec()))
        .collect()
}

/// A copy of the weight of the `Linear` at position `i`.
fn weight_of(net: &Sequential, i: usize) -> Tensor {
    net.child::<Linear>(i)
        .unwrap()
        .weight
        .data()
        .unwrap()
        .clone()
}

/// The chapter's lazy network after a forward on a `[2, 4]` input.
fn materialized_lazy_net() -> Sequential {
    let mut net = chapter::lazy_net();
    net.forward(&Tensor::rand(&[2, 4], None).unwrap()).unwrap();
    net
}

#[test]
fn item1_lazy_shapes_inferred_at_first_forward() {
    let mut net = chapter::lazy_net();
    let lin = net.child::<Linear>(0).unwrap();
    assert_eq!(lin.in_features(), None);
    assert!(!lin.weight.is_initialized());
    assert_eq!(
        lin.weight.data().unwrap_err(),
        Error::UninitializedParameter
    );
    assert!(net.named_parameters()[0].1.shape().is_none());
    assert_eq!(lin.weight.to_string(), "<UninitializedParameter>");
    assert_eq!(
        net.to_string(),
        "Sequential(\n  (0): LazyLinear(in_features=0, out_features=8, bias=True)\n  (1): ReLU()\n  \
         (2): LazyLinear(in_features=0, out_features=1, bias=True)\n)"
    );
    // Init on an uninitialized parameter is an error, not garbage.
    assert_eq!(
        init::ones_(&lin.weight).unwrap_err(),
        Error::UninitializedParameter
    );

    let x = Tensor::rand(&[2, 4], Some(&mut Generator::new(0))).unwrap();
    assert_eq!(net.forward(&x).unwrap().shape(), &[2, 1]);
    assert_eq!(
        net.to_string(),
        "Sequential(\n  (0): Linear(in_features=4, out_features=8, bias=True)\n  (1): ReLU()\n  \
         (2): Linear(in_features=8, out_features=1, bias=True)\n)"
    );
    // Default init bound 1/sqrt(in).
    let w = weight_of(&net, 0);
    assert!(w.as_slice().iter().all(|v| v.abs() <= 0.5));
    // Another width later is an error value with PyTorch's text.
    let wide = Tensor::rand(&[2, 5], None).unwrap();
    assert_eq!(
        net.forward(&wide).unwrap_err().to_string(),
        "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8)"
    );
}

#[test]
fn item2_parameter_access() {
    let net = materialized_lazy_net();
    let sd = net[2].state_dict();
    assert_eq!(sd.keys().collect::<Vec<_>>(), ["weight", "bias"]);
    assert_eq!(sd["weight"].shape(), &[1, 8]);
    let last = net.child::<Linear>(2).unwrap();
    let bias = last.bias.as_ref().unwrap();
    assert_eq!(bias.data().unwrap().shape(), &[1]);
    assert_eq!(*bias.data().unwrap(), sd["bias"]);
    assert!(bias.grad().is_none());
    assert!(last.weight.grad().is_none());
    assert!(
        bias.to_string()
            .starts_with("Parameter containing:\ntensor([")
    );
    assert!(bias.to_string().ends_with("], requires_grad=True)"));
    assert_eq!(
        names(net[0].named_parameters()),
        s(&[("weight", &[8, 4]), ("bias", &[8])])
    );
    assert_eq!(
        names(net.named_parameters()),
        s(&[
            ("0.weight", &[8, 4]),
            ("0.bias", &[8]),
            ("2.weight", &[1, 8]),
            ("2.bias", &[1])
        ])
    );
    assert_eq!(net.state_dict()["2.bias"], *bias.data().unwrap());
    assert_eq!(net.parameters().len(), 4);
}

#[test]
fn item3_nested_blocks() {
    let mut rgnet = Sequential::new()
        .with(chapter::block2().unwrap())
        .with(Linear::new(4, 1).unwrap());
    let y = rgnet
        .forward(&Tensor::rand(&[2, 4], None).unwrap())
        .unwrap();
    assert_eq!(y.shape(), &[2, 1]);
    let printed = rgnet.to_string();
    assert!(printed.starts_with(
        "Sequential(\n  (0): Sequential(\n    (block 0): Sequential(\n      (0): Linear(in_features=4, \
         out_features=8, bias=True)\n      (1): ReLU()\n"
    ));
    assert!(printed.contains("\n    (block 3): Sequential(\n"));
    assert!(printed.ends_with("  )\n  (1): Linear(in_features=4, out_features=1, bias=True)\n)"));
    let inner = rgnet[0][1][0].to::<Linear>().unwrap();
    let bias = inner.bias.as_ref().unwrap();
    let dotted: Vec<String> = rgnet
        .named_parameters()
        .into_iter()
        .filter(|(_, p)| p.ptr_eq(bias))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(dotted, ["0.block 1.0.bias"]);
    assert_eq!(rgnet.named_parameters().len(), 4 * 4 + 2);
    assert_eq!(
        rgnet[0][1].to::<Linear>().unwrap_err().to_string(),
        "module is a Sequential, not a Linear"
    );
    // Names with spaces are fine; a dot or an empty name is not.
    let mut b = Sequential::new();
    assert_eq!(
        b.add_module("x.y", ReLU::new()).unwrap_err().to_string(),
        "module name can't contain \".\", got: x.y"
    );
    assert_eq!(
        b.add_module("", ReLU::new()).unwrap_err().to_string(),
        "module name can't be empty string \"\""
    );
    b.add_module("a b", ReLU::new()).unwrap();
    assert_eq!(
        b.add_module("a b", ReLU::new()).unwrap_err().to_string(),
        "attribute 'a b' already exists"
    );
    let mods: Vec<String> = rgnet.named_modules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(mods[..4], ["", "0", "0.block 0", "0.block 0.0"]);
}

#[test]
fn item4_builtin_init_through_apply() {
    let mut net = materialized_lazy_net();
    net.apply(&mut chapter::init_normal).unwrap();
    for (name, p) in net.named_parameters() {
        let d = p.data().unwrap();
        if name.ends_with("bias") {
            assert!(d.as_slice().iter().all(|&v| v == 0.0));
        } else {
            assert!(d.as_slice().iter().all(|&v| v.abs() < 0.1));
            assert!(d.as_slice().iter().any(|&v| v != 0.0));
        }
    }
    net.apply(&mut chapter::init_constant).unwrap();
    let w = weight_of(&net, 0);
    assert!(w.as_slice().iter().all(|&v| v == 1.0));

    net[2]
        .apply(&mut |m| {
            if let Some(l) = m.downcast_ref::<Linear>() {
                init::constant_(&l.weight, 42.0)?;
            }
            Ok(())
        })
        .unwrap();
    let w2 = weight_of(&net, 2);
    assert_eq!(w2, Tensor::full(&[1, 8], 42.0).unwrap());
    assert_eq!(
        w2.to_string(),
        "tensor([[42., 42., 42., 42., 42., 42., 42., 42.]])"
    );
    // net[0] untouched by net[2].apply.
    let w0 = weight_of(&net, 0);
    assert!(w0.as_slice().iter().all(|&v| v == 1.0));

    // Order: children first, then the module itself, recursively.
    let mut rgnet = Sequential::new()
        .with(chapter::block1().unwrap())
        .with(Linear::new(4, 1).unwrap());
    let mut order = Vec::new();
    rgnet
        .apply(&mut |m| {
            order.push(m.type_name());
            Ok(())
        })
        .unwrap();
    assert_eq!(
        order,
        [
            "Linear",
            "ReLU",
            "Linear",
            "ReLU",
            "Sequential",
            "Linear",
            "Sequential"
        ]
    );
    // An error stops the walk and comes back.
    let err = rgnet
        .apply(&mut |m| match m.downcast_ref::<Linear>() {
            Some(l) => init::normal_(&l.weight, 0.0, -1.0, None),
            None => Ok(()),
        })
        .unwrap_err();
    assert!(err.to_string().contains("std >= 0.0"));
}

#[test]
fn item5_custom_init_with_threshold_mask() {
    let mut net = materialized_lazy_net();
    let mut printed = String::new();
    net.apply(&mut |m| chapter::my_init(m, &mut printed))
        .unwrap();
    assert_eq!(printed, "Init weight [8, 4]\nInit weight [1, 8]\n");
    for i in [0, 2] {
        let w = net
            .child::<Linear>(i)
            .unwrap()
            .weight
            .data()
            .unwrap()
            .clone();
        assert!(
            w.as_slice()
                .iter()
                .all(|&v| v == 0.0 || (5.0..10.0).contains(&v.abs()))
        );
    }
}

#[test]
fn item6_direct_setting() {
    let lin = Linear::new(4, 8).unwrap();
    let before = lin.weight.data().unwrap().clone();
    {
        let mut w = lin.weight.data_mut().unwrap();
        *w += 1.0;
        w[[0, 0]] = 42.0;
    }
    let after = lin.weight.data().unwrap();
    assert_eq!(after[[0, 0]], 42.0);
    for (i, (a, b)) in after
        .as_slice()
        .iter()
        .zip(before.as_slice())
        .enumerate()
        .skip(1)
    {
        assert_eq!(*a, b + 1.0, "element {i}");
    }
}

#[test]
fn item7_tied_parameters() {
    let mut net = chapter::tied_net().unwrap();
    net.forward(&Tensor::rand(&[2, 4], None).unwrap()).unwrap();
    let w2 = net.child::<Linear>(2).unwrap().weight.clone();
    let w4 = net.child::<Linear>(4).unwrap().weight.clone();
    assert!(w2.ptr_eq(&w4));
    let copy = Parameter::new(w2.data().unwrap().clone());
    assert!(!w2.ptr_eq(&copy));
    w2.data_mut().unwrap()[[0, 0]] = 100.0;
    assert_eq!(w4.data().unwrap()[[0, 0]], 100.0);
    assert_eq!(*w2.data().unwrap(), *w4.data().unwrap());
    let listed: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        listed,
        [
            "0.weight", "0.bias", "2.weight", "2.bias", "6.weight", "6.bias"
        ]
    );
    let sd = net.state_dict();
    assert_eq!(
        sd.keys().collect::<Vec<_>>(),
        [
            "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"
        ]
    );
    assert_eq!(sd.tied_to("4.weight"), Some("2.weight"));
    assert_eq!(sd.tied_to("4.bias"), Some("2.bias"));
    assert_eq!(sd.tied_to("2.weight"), None);
    assert_eq!(sd["4.weight"], sd["2.weight"]);
}

#[test]
fn the_example_runs() {
    let mut out = String::new();
    chapter::run(&mut out).unwrap();
    for line in [
        "net(X).shape = [2, 1]",
        "its dotted name: 0.block 1.0.bias",
        "Init weight [8, 4]\nInit weight [1, 8]\n",
        "net[2].weight is net[4].weight: true",
        "net[4].weight.data[0, 0] = tensor(100.)",
        "tensor([[42., 42., 42., 42., 42., 42., 42., 42.]])",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn load_state_dict_strict_and_not() {
    let src = chapter::tied_net().unwrap();
    let dst = chapter::tied_net().unwrap();
    let report = dst.load_state_dict(&src.state_dict(), true).unwrap();
    assert!(report.missing_keys.is_empty() && report.unexpected_keys.is_empty());
    assert_eq!(dst.state_dict(), src.state_dict());

    let mut sd = src.state_dict();
    let mut partial = nninit::nn::StateDict::new();
    for (k, t) in sd.iter().filter(|(k, _)| !k.starts_with('6')) {
        partial.insert(k, t.clone());
    }
    partial.insert("extra", Tensor::zeros(&[1]).unwrap());
    let before = dst.state_dict();
    let err = dst.load_state_dict(&partial, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: \
         \"6.weight\", \"6.bias\". \n\tUnexpected key(s) in state_dict: \"extra\". "
    );
    assert_eq!(dst.state_dict(), before, "a failed load changes nothing");
    let report = dst.load_state_dict(&partial, false).unwrap();
    assert_eq!(report.missing_keys, ["6.weight", "6.bias"]);
    assert_eq!(report.unexpected_keys, ["extra"]);

    sd.insert("0.weight", Tensor::zeros(&[8, 5]).unwrap());
    let err = dst.load_state_dict(&sd, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error(s) in loading state_dict for Sequential:\n\tsize mismatch for 0.weight: copying a \
         param with shape torch.Size([8, 5]) from checkpoint, the shape in current model is \
         torch.Size([8, 4])."
    );

    // A lazy network takes its shapes from the state dict.
    let mut lazy = chapter::lazy_net();
    let mut eager = chapter::lazy_net();
    eager
        .forward(&Tensor::rand(&[3, 4], None).unwrap())
        .unwrap();
    lazy.load_state_dict(&eager.state_dict(), true).unwrap();
    assert_eq!(lazy.child::<Linear>(0).unwrap().in_features(), Some(4));
    let x = Tensor::rand(&[3, 4], None).unwrap();
    assert_eq!(lazy.forward(&x).unwrap(), eager.forward(&x).unwrap());
}

#[test]
fn modules_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Parameter>();
    check::<Sequential>();
    check::<Linear>();
    check::<Box<dyn Module>>();
}
