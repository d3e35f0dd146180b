//! Sharded checkpoints (`io::checkpoint`, `dist::save_sharded`): Hugging
//! Face's shard assignment, round trips, strict checks naming the file and
//! tensor, and many processes writing one checkpoint whose files do not
//! depend on the world size.

use std::path::{Path, PathBuf};

use nninit::dist::{ShardedSave, World, save_sharded};
use nninit::io::checkpoint::{self, ShardPlan};
use nninit::io::dtype::Dtype;
use nninit::nn::{Embedding, Linear, Module, Parameter, Sequential, meta};
use nninit::{Error, Generator, Result, Tensor};

/// A module that is a named list of parameters.
#[derive(Debug)]
struct Bag(Vec<(String, Parameter)>);

impl Module for Bag {
    fn type_name(&self) -> &'static str {
        "Bag"
    }
    fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
    fn own_parameters(&self) -> Vec<(&str, &Parameter)> {
        self.0.iter().map(|(n, p)| (n.as_str(), p)).collect()
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nninit-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn files_are_assigned_as_huggingface_hub_assigns_them() {
    // huggingface_hub.split_state_dict_into_shards_factory on sizes
    // {a: 6, b: 10, c: 30, d: 2, e: 2, f: 9, g: 1} with max 10 gives a→1,
    // c→2 (too big: a file of its own), b→3, d, e→4, f, g→5 of 5.
    let sizes = [
        ("a", 6),
        ("b", 10),
        ("c", 30),
        ("d", 2),
        ("e", 2),
        ("f", 9),
        ("g", 1),
    ];
    let bag = Bag(sizes
        .iter()
        .map(|&(n, s)| (n.to_string(), Parameter::new(Tensor::zeros(&[s]).unwrap())))
        .collect());
    let plan = ShardPlan::for_module(&bag, Dtype::F32, 40);
    let file_of: Vec<(&str, &str)> = plan
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), plan.files()[t.file].as_str()))
        .collect();
    let f = |k: usize| format!("model-{k:05}-of-00005.safetensors");
    let want = [
        ("a", f(1)),
        ("b", f(3)),
        ("c", f(2)),
        ("d", f(4)),
        ("e", f(4)),
        ("f", f(5)),
        ("g", f(5)),
    ];
    assert_eq!(
        file_of,
        want.iter()
            .map(|(n, f)| (*n, f.as_str()))
            .collect::<Vec<_>>()
    );
    assert_eq!(plan.total_size(), 60 * 4);
    // In bf16 the sizes halve: everything up to the limit fits in fewer files.
    let plan = ShardPlan::for_module(&bag, Dtype::BF16, 40);
    assert_eq!(plan.total_size(), 60 * 2);
    assert_eq!(checkpoint::parse_size("5GB").unwrap(), 5_000_000_000);
    let one = ShardPlan::for_module(&bag, Dtype::F32, 1 << 30);
    assert_eq!(one.files(), ["model.safetensors"]);
}

fn network(g: &mut Generator) -> Result<Sequential> {
    let shared = Linear::with_options(32, 32, true, Some(&mut *g))?;
    Ok(Sequential::new()
        .with(Embedding::new(50, 32, Some(0), Some(&mut *g))?)
        .with(Linear::with_options(32, 32, false, Some(&mut *g))?)
        .with(shared.clone())
        .with(shared)
        .with(Linear::with_options(32, 50, true, Some(&mut *g))?))
}

fn small_shards() -> ShardedSave {
    ShardedSave {
        max_shard_size: 6000,
        ..ShardedSave::default()
    }
}

#[test]
fn a_sharded_checkpoint_round_trips_and_python_layout_holds() {
    let eager = network(&mut Generator::new(3)).unwrap();
    let dir = tmp("round");
    let plan = save_sharded(&eager, &dir, &small_shards(), &World::single()).unwrap();
    assert!(plan.files().len() > 2, "{:?}", plan.files());
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(checkpoint::INDEX_FILE)).unwrap())
            .unwrap();
    assert_eq!(index["metadata"]["total_size"], plan.total_size());
    let map = index["weight_map"].as_object().unwrap();
    assert!(
        map.contains_key("2.weight") && !map.contains_key("3.weight"),
        "ties written once"
    );
    // Into a model on meta: assigned, no init.
    let target = meta::on_meta(|| network(&mut Generator::new(99))).unwrap();
    checkpoint::load_sharded(&target, &dir, true).unwrap();
    let (a, b) = (eager.state_dict(), target.state_dict());
    assert_eq!(a.len(), b.len());
    for (name, t) in a.iter() {
        assert!(b.get_any(name).unwrap().bit_eq(t), "{name}");
    }
    let sd = target.state_dict();
    assert_eq!(sd.tied_to("3.weight"), Some("2.weight"), "the tie survives");
    // A meta model writes the same bytes.
    let lazy = meta::on_meta(|| network(&mut Generator::new(3))).unwrap();
    let dir2 = tmp("round-meta");
    save_sharded(&lazy, &dir2, &small_shards(), &World::single()).unwrap();
    assert_same_files(&dir, &dir2, &plan);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

fn assert_same_files(a: &Path, b: &Path, plan: &ShardPlan) {
    let mut files: Vec<String> = plan.files().to_vec();
    if plan.is_sharded() {
        files.push(checkpoint::INDEX_FILE.to_string());
    }
    for f in files {
        assert_eq!(
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn broken_checkpoints_are_errors_naming_file_and_tensor() {
    let net = network(&mut Generator::new(4)).unwrap();
    let dir = tmp("broken");
    let plan = save_sharded(&net, &dir, &small_shards(), &World::single()).unwrap();
    let index_path = dir.join(checkpoint::INDEX_FILE);
    let index = std::fs::read_to_string(&index_path).unwrap();
    let check = |what: &str, want: &str| {
        let fresh = network(&mut Generator::new(5)).unwrap();
        let e = checkpoint::load_sharded(&fresh, &dir, true).unwrap_err();
        assert!(
            matches!(e, Error::Checkpoint { .. }) || matches!(e, Error::LoadStateDict { .. }),
            "{what}: {e}"
        );
        assert!(e.to_string().contains(want), "{what}: {e}");
    };
    // A missing file.
    let last = dir.join(plan.files().last().unwrap());
    let saved = std::fs::read(&last).unwrap();
    std::fs::remove_file(&last).unwrap();
    check("missing file", "named by the index, but missing");
    // A truncated shard.
    std::fs::write(&last, &saved[..saved.len() - 5]).unwrap();
    check("truncated", plan.files().last().unwrap());
    std::fs::write(&last, &saved).unwrap();
    // The index names a tensor that is not in its file.
    std::fs::write(&index_path, index.replace("\"0.weight\"", "\"0.weightx\"")).unwrap();
    check("missing tensor", "\"0.weightx\"");
    // A tensor moved to another file in the index.
    let mut v: serde_json::Value = serde_json::from_str(&index).unwrap();
    let first = plan.files()[0].clone();
    let moved = v["weight_map"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, f)| f.as_str() != Some(first.as_str()))
        .map(|(k, _)| k.clone())
        .unwrap();
    v["weight_map"][&moved] = serde_json::json!(first);
    std::fs::write(&index_path, v.to_string()).unwrap();
    check("wrong file", &moved);
    // total_size disagrees.
    let mut v: serde_json::Value = serde_json::from_str(&index).unwrap();
    v["metadata"]["total_size"] = serde_json::json!(plan.total_size() + 4);
    std::fs::write(&index_path, v.to_string()).unwrap();
    check("total_size", "total_size");
    // Not JSON.
    std::fs::write(&index_path, "{nope").unwrap();
    check("bad json", "not valid JSON");
    // A shape that disagrees with the model.
    std::fs::write(&index_path, &index).unwrap();
    let other = Sequential::new().with(Embedding::new(51, 32, None, None).unwrap());
    let e = checkpoint::load_sharded(&other, &dir, false).unwrap_err();
    assert!(e.to_string().contains("size mismatch for 0.weight"), "{e}");
    // A file of another plan: the ranks disagree.
    let other_plan = ShardedSave {
        max_shard_size: 2500,
        ..ShardedSave::default()
    };
    let dir2 = tmp("broken-other");
    let plan2 = save_sharded(&net, &dir2, &other_plan, &World::single()).unwrap();
    assert_ne!(plan2.fingerprint(), plan.fingerprint());
    std::fs::copy(dir2.join(&plan2.files()[0]), dir.join(&plan.files()[0])).unwrap();
    let e = save_sharded_rank0_index_only(&net, &dir);
    assert!(e.to_string().contains("another plan"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

/// Rank 1 of 2 writes nothing and returns; rank 0's check of the files then
/// finds the foreign file (the other rank's files are already in place).
fn save_sharded_rank0_index_only(net: &dyn Module, dir: &Path) -> Error {
    let plan = ShardPlan::for_module(net, Dtype::F32, small_shards().max_shard_size);
    checkpoint::wait_for_files(dir, &plan, std::time::Duration::from_secs(5)).unwrap_err()
}

/// Runs this test binary's `rank_child` as rank `rank` of `world`.
fn spawn_rank(dir: &Path, rank: usize, world: usize) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rank_child", "--ignored", "--nocapture"])
        .env("NNINIT_CKPT_DIR", dir)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("NNINIT_CKPT_TIMEOUT_MS", "4000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// One rank of a job (started by `any_world_size_writes_the_same_files`).
#[test]
#[ignore = "started as a child process by any_world_size_writes_the_same_files"]
fn rank_child() {
    let Ok(dir) = std::env::var("NNINIT_CKPT_DIR") else {
        return;
    };
    let world = World::from_env().unwrap();
    let timeout = std::env::var("NNINIT_CKPT_TIMEOUT_MS")
        .unwrap()
        .parse()
        .unwrap();
    let net = meta::on_meta(|| network(&mut Generator::new(8))).unwrap();
    let options = ShardedSave {
        timeout: std::time::Duration::from_millis(timeout),
        ..small_shards()
    };
    save_sharded(&net, &dir, &options, &world).unwrap();
}

#[test]
fn any_world_size_writes_the_same_files() {
    let eager = network(&mut Generator::new(8)).unwrap();
    let reference = tmp("world-1");
    let plan = save_sharded(&eager, &reference, &small_shards(), &World::single()).unwrap();
    for world in [2usize, 3, 7] {
        let dir = tmp(&format!("world-{world}"));
        let mut children: Vec<_> = (0..world).map(|r| spawn_rank(&dir, r, world)).collect();
        for c in &mut children {
            assert!(c.wait().unwrap().success(), "world {world}: a rank failed");
        }
        assert_same_files(&reference, &dir, &plan);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // A rank that never runs: rank 0 gives up, no index; a rerun completes.
    let dir = tmp("world-dead");
    let mut children: Vec<_> = [0usize, 2]
        .iter()
        .map(|&r| spawn_rank(&dir, r, 3))
        .collect();
    let ok: Vec<bool> = children
        .iter_mut()
        .map(|c| c.wait().unwrap().success())
        .collect();
    assert_eq!(
        ok,
        [false, true],
        "rank 0 times out, rank 2 finishes its files"
    );
    assert!(
        !dir.join(checkpoint::INDEX_FILE).exists(),
        "an incomplete checkpoint has no index"
    );
    let mut children: Vec<_> = (0..3).map(|r| spawn_rank(&dir, r, 3)).collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    assert_same_files(&reference, &dir, &plan);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&reference).unwrap();
}

#[test]
fn ranks_come_from_the_launchers_environment() {
    assert!(World::new(3, 3).is_err());
    let w = World::new(1, 4).unwrap();
    assert_eq!((w.rank(), w.size()), (1, 4));
}
