//! `cargo run --example chapter -- --generator torch --seed S` against
//! PyTorch: the tour on the torch-exact global generator prints every tensor
//! the chapter's cells print in PyTorch 2.15, exactly. (Its own test binary:
//! the tour owns the global generator while it runs.)

#[path = "../examples/chapter.rs"]
#[allow(dead_code)]
mod chapter;

/// The `## label` blocks of a `chapter_cells.py` output, `grad_fn=` removed.
fn cells(text: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(label) = line.strip_prefix("## ") {
            blocks.push((label.to_string(), String::new()));
        } else if let Some((_, body)) = blocks.last_mut() {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(line);
        }
    }
    for (_, body) in &mut blocks {
        if let Some(at) = body.find(", grad_fn=<") {
            let end = body[at..].find('>').unwrap() + at + 1;
            body.replace_range(at..end, "");
        }
    }
    blocks
}

/// `--generator torch --seed S` prints every tensor PyTorch's cells print
/// (`tests/fixtures/chapter_cells_S.txt`: `python chapter_cells.py S` with
/// torch 2.15.0), exactly.
#[test]
fn torch_mode_prints_pytorchs_tensors() {
    for seed in [0u64, 1, 7, 42, 12345] {
        let path = format!(
            "{}/tests/fixtures/chapter_cells_{seed}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let want = cells(&std::fs::read_to_string(path).unwrap());
        assert_eq!(want.len(), 16);
        let mut out = String::new();
        chapter::run_with(&mut out, chapter::Mode::Torch(seed)).unwrap();
        let got = cells(&out);
        for (label, body) in &want {
            let (_, mine) = got
                .iter()
                .find(|(l, _)| l == label)
                .unwrap_or_else(|| panic!("seed {seed}: no block {label}"));
            assert!(
                mine.starts_with(body.as_str()),
                "seed {seed}, {label}:\nPyTorch:\n{body}\nnninit:\n{mine}"
            );
        }
    }
}
