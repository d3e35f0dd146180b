//! `NNINIT_ISA` really selects the path (CI runs the kernel tests once with
//! `NNINIT_ISA=scalar` and checks with this test that the forced path ran).

use nninit::kernels::{Isa, Kernels};

#[test]
fn active_isa_follows_the_environment() {
    let active = Kernels::active().isa();
    match std::env::var("NNINIT_ISA").ok().as_deref() {
        None | Some("") | Some("auto") => assert_eq!(active, Isa::best()),
        Some(v) => {
            let wanted: Isa = v.parse().expect("CI sets a valid NNINIT_ISA");
            let expect = if wanted.is_supported() {
                wanted
            } else {
                Isa::Scalar
            };
            assert_eq!(active, expect, "NNINIT_ISA={v}");
        }
    }
    eprintln!("active instruction set: {active}");
}
