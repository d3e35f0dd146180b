//! `NNINIT_ISA` really selects the path. CI runs the kernel tests once per
//! instruction set the machine supports (`NNINIT_ISA=scalar`, `avx2`,
//! `avx512`) with `NNINIT_ISA_STRICT=1`, and checks with this test that the
//! forced path ran: under `NNINIT_ISA_STRICT` an unsupported forced
//! instruction set is a failure, not a fallback to scalar.

use nninit::kernels::{Isa, Kernels};

#[test]
fn active_isa_follows_the_environment() {
    let active = Kernels::active().isa();
    let strict = std::env::var_os("NNINIT_ISA_STRICT").is_some_and(|v| !v.is_empty());
    match std::env::var("NNINIT_ISA").ok().as_deref() {
        None | Some("") | Some("auto") => assert_eq!(active, Isa::best()),
        Some(v) => {
            let wanted: Isa = v.parse().expect("CI sets a valid NNINIT_ISA");
            assert!(
                !strict || wanted.is_supported(),
                "NNINIT_ISA={v} is forced with NNINIT_ISA_STRICT, but this CPU lacks it \
                 (supported: {:?})",
                Isa::supported()
            );
            let expect = if wanted.is_supported() {
                wanted
            } else {
                Isa::Scalar
            };
            assert_eq!(active, expect, "NNINIT_ISA={v}");
        }
    }
    eprintln!(
        "active instruction set: {active} (supported: {})",
        Isa::supported()
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
