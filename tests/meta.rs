//! Modules built on meta (`nn::meta`): shapes and names without memory, and
//! materialized values equal to an eager build bit for bit, in any order and
//! any subset; loading into a meta model assigns the file's data.

#[path = "../examples/resnet18.rs"]
#[allow(dead_code)]
mod resnet18;

use nninit::nn::{Embedding, Linear, Module, meta};
use nninit::{Error, Generator, Tensor};

fn bits(t: &Tensor) -> Vec<u32> {
    t.as_slice().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_meta_resnet_materializes_to_the_eager_one_in_any_order() {
    let eager = resnet18::resnet18(Some(&mut Generator::new(5))).unwrap();
    let mut g = Generator::new(5);
    let lazy = meta::on_meta(|| resnet18::resnet18(Some(&mut g))).unwrap();
    // The generator moved exactly as the eager build moved it.
    let mut g_eager = Generator::new(5);
    resnet18::resnet18(Some(&mut g_eager)).unwrap();
    assert_eq!(g.state(), g_eager.state());
    // Names, shapes and dtypes without data.
    let shapes = lazy.state_dict_shapes();
    let want: Vec<(String, Vec<usize>, &str)> = eager
        .state_dict()
        .iter()
        .map(|(k, t)| (k.to_string(), t.shape().to_vec(), t.dtype_name()))
        .collect();
    assert_eq!(shapes, want);
    assert!(lazy.parameters().iter().all(|p| p.is_meta()));
    assert_eq!(
        lazy.state_dict().len(),
        20,
        "only the int64 counters have data"
    );
    assert!(
        lazy.to_string()
            .contains("Conv2d(3, 64, kernel_size=(7, 7)")
    );
    // A row range of one weight, without materializing it.
    let rows = meta::materialize_rows(&lazy, "layer3.1.conv2.weight", 17..40).unwrap();
    let full = eager.state_dict();
    let w = full.get("layer3.1.conv2.weight").unwrap();
    let width = 256 * 9;
    assert_eq!(
        bits(&rows),
        bits(&Tensor::from_slice(&w.as_slice()[17 * width..40 * width], rows.shape()).unwrap())
    );
    // A subset, then the rest in reverse order.
    meta::materialize(&lazy, |n| n.starts_with("layer4")).unwrap();
    assert!(lazy.parameters().iter().any(|p| p.is_meta()));
    let mut names: Vec<String> = lazy
        .state_dict_shapes()
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    names.reverse();
    for n in &names {
        meta::materialize(&lazy, |m| m == n).unwrap();
    }
    let sd = lazy.state_dict();
    assert_eq!(sd.len(), full.len());
    for (name, t) in full.iter() {
        assert!(sd.get_any(name).unwrap().bit_eq(t), "{name}");
    }
}

#[test]
fn loading_into_a_meta_model_assigns_without_init() {
    let src = Linear::with_options(64, 32, true, Some(&mut Generator::new(1))).unwrap();
    let path = std::env::temp_dir().join(format!("nninit-meta-{}.safetensors", std::process::id()));
    nninit::io::safetensors::save_module(&src, &path).unwrap();
    let target =
        meta::on_meta(|| Linear::with_options(64, 32, true, Some(&mut Generator::new(99))))
            .unwrap();
    nninit::io::safetensors::load_module(&target, &path, true).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!target.weight.is_meta());
    assert_eq!(*target.weight.data().unwrap(), *src.weight.data().unwrap());
    // And from a state dict in memory.
    let target =
        meta::on_meta(|| Linear::with_options(64, 32, true, Some(&mut Generator::new(98))))
            .unwrap();
    target.load_state_dict(&src.state_dict(), true).unwrap();
    assert_eq!(
        *target.bias.as_ref().unwrap().data().unwrap(),
        *src.bias.as_ref().unwrap().data().unwrap()
    );
}

#[test]
fn meta_parameters_print_and_refuse_use() {
    let mut l =
        meta::on_meta(|| Linear::with_options(4, 3, true, Some(&mut Generator::new(0)))).unwrap();
    assert_eq!(
        l.weight.to_string(),
        "Parameter containing:\ntensor(..., device='meta', size=(3, 4), requires_grad=True)"
    );
    assert_eq!(
        l.bias.as_ref().unwrap().to_string(),
        "Parameter containing:\ntensor(..., device='meta', size=(3,), requires_grad=True)"
    );
    assert_eq!(
        l.to_string(),
        "Linear(in_features=4, out_features=3, bias=True)"
    );
    let err = l.forward(&Tensor::ones(&[1, 4]).unwrap()).unwrap_err();
    assert!(matches!(err, Error::MetaParameter { .. }), "{err}");
    // Embeddings keep their padding row through the deferred init.
    let e = meta::on_meta(|| Embedding::new(10, 4, Some(3), Some(&mut Generator::new(2)))).unwrap();
    let eager = Embedding::new(10, 4, Some(3), Some(&mut Generator::new(2))).unwrap();
    assert_eq!(
        meta::materialize_rows(&e, "weight", 2..5)
            .unwrap()
            .as_slice(),
        &eager.weight.data().unwrap().as_slice()[8..20]
    );
    assert!(matches!(
        meta::on_meta(|| Linear::with_options(4, 3, true, Some(&mut Generator::torch(0)))),
        Err(Error::MetaTorchGenerator)
    ));
    assert!(meta::materialize_rows(&l, "nope", 0..1).is_err());
    assert!(meta::materialize_rows(&l, "weight", 2..9).is_err());
    assert!(!meta::is_on_meta());
}

#[test]
fn a_meta_model_is_written_without_materializing() {
    let eager = resnet18::ResNet::new([1, 1, 1, 1], 8, 10, Some(&mut Generator::new(4))).unwrap();
    let lazy =
        meta::on_meta(|| resnet18::ResNet::new([1, 1, 1, 1], 8, 10, Some(&mut Generator::new(4))))
            .unwrap();
    let dir = std::env::temp_dir().join(format!("nninit-meta-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("eager.safetensors"), dir.join("meta.safetensors"));
    nninit::io::safetensors::save_module(&eager, &a).unwrap();
    nninit::io::safetensors::save_module(&lazy, &b).unwrap();
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "the same bytes"
    );
    assert!(
        lazy.parameters().iter().all(|p| p.is_meta()),
        "still on meta"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
