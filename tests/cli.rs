//! The `nninit` command (cargo feature `cli`): a Llama config becomes a
//! checkpoint directory with transformers' names and shapes, the same
//! files for any number of ranks; a generic plan; bad arguments exit 2.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

use nninit::io::checkpoint;
use nninit::io::dtype::Dtype;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nninit"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn out(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nninit-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn init(dir: &Path, extra: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = bin();
    c.args(["init", "--config"])
        .arg(fixture("llama/config.json"))
        .arg("--out")
        .arg(dir)
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn a_llama_config_becomes_a_transformers_checkpoint() {
    let dir = out("llama");
    let o = init(
        &dir,
        &[
            "--dtype",
            "bf16",
            "--max-shard-size",
            "100KB",
            "--seed",
            "3",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(dir.join("config.json")).unwrap(),
        std::fs::read(fixture("llama/config.json")).unwrap()
    );
    let mut names = checkpoint::check_sharded(&dir).unwrap();
    names.sort();
    let (h, i, v, q, kv) = (64, 160, 1000, 64, 32);
    let mut want: Vec<(String, Vec<usize>)> = vec![
        ("lm_head.weight".into(), vec![v, h]),
        ("model.embed_tokens.weight".into(), vec![v, h]),
        ("model.norm.weight".into(), vec![h]),
    ];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        want.extend([
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
            (format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
        ]);
    }
    want.sort();
    assert_eq!(names, want);
    // bf16 on disk; the values follow the config's law.
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(checkpoint::INDEX_FILE)).unwrap())
            .unwrap();
    let file = index["weight_map"]["model.embed_tokens.weight"]
        .as_str()
        .unwrap();
    let sd = nninit::io::safetensors::load(dir.join(file)).unwrap();
    let e = sd.get("model.embed_tokens.weight").unwrap();
    let n = e.numel() as f64;
    let var = e
        .as_slice()
        .iter()
        .map(|&x| f64::from(x).powi(2))
        .sum::<f64>()
        / n;
    assert!((var.sqrt() - 0.02).abs() < 0.001, "std {}", var.sqrt());
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + hlen]).unwrap();
    assert_eq!(
        header["model.embed_tokens.weight"]["dtype"],
        Dtype::BF16.name()
    );
    // Deterministic: the same seed gives the same bytes; another seed not.
    let again = out("llama-again");
    assert!(
        init(
            &again,
            &[
                "--dtype",
                "bf16",
                "--max-shard-size",
                "100KB",
                "--seed",
                "3"
            ],
            &[]
        )
        .status
        .success()
    );
    assert_eq!(
        std::fs::read(dir.join(file)).unwrap(),
        std::fs::read(again.join(file)).unwrap()
    );
    // Several ranks (torchrun's environment): the same files.
    let ranked = out("llama-ranks");
    let children: Vec<_> = (0..3)
        .map(|r| {
            let mut c = bin();
            c.args(["init", "--config"])
                .arg(fixture("llama/config.json"))
                .arg("--out")
                .arg(&ranked)
                .args([
                    "--dtype",
                    "bf16",
                    "--max-shard-size",
                    "100KB",
                    "--seed",
                    "3",
                ])
                .env("RANK", r.to_string())
                .env("WORLD_SIZE", "3")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().file_name();
        assert_eq!(
            std::fs::read(dir.join(&f)).unwrap(),
            std::fs::read(ranked.join(&f)).unwrap(),
            "{f:?}"
        );
    }
    for d in [dir, again, ranked] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_generic_plan_and_bad_arguments() {
    let dir = out("plan");
    let plan = dir.with_extension("json");
    std::fs::write(
        &plan,
        r#"{"tensors": [{"name": "w", "shape": [8, 4], "init": {"orthogonal": {"gain": 2}}}, {"name": "b", "shape": [8], "init": "zeros"}]}"#,
    )
    .unwrap();
    let o = bin()
        .args(["init", "--plan"])
        .arg(&plan)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sd = nninit::io::safetensors::load(dir.join(checkpoint::SINGLE_FILE)).unwrap();
    let w = sd.get("w").unwrap();
    // 2·Q with orthonormal columns: WᵀW = 4·I.
    for a in 0..4 {
        for b in 0..4 {
            let dot: f32 = (0..8)
                .map(|r| w.as_slice()[r * 4 + a] * w.as_slice()[r * 4 + b])
                .sum();
            assert!((dot - if a == b { 4.0 } else { 0.0 }).abs() < 1e-4);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(
        &plan,
        r#"{"tensors": [{"name": "w", "shape": [2], "init": {"nope": {}}}]}"#,
    )
    .unwrap();
    let o = bin()
        .args(["init", "--plan"])
        .arg(&plan)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown init \"nope\""));
    std::fs::remove_file(&plan).unwrap();
    let o = init(&out("bad"), &["--max-shard-size", "5GiB"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("5GiB"));
    let o = bin().args(["init", "--out", "/tmp/x"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap: --config or --plan is required"
    );
}
