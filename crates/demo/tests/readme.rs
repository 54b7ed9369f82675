//! The README shows what the demo prints: its demo block is the binary's output, exactly.

const README: &str = include_str!("../../../README.md");

#[test]
fn readme_demo_block_is_the_binarys_output() {
    let section = README.split("\n## The demo\n").nth(1).expect("a `## The demo` section");
    let block = section.split("```text\n").nth(1).and_then(|b| b.split("```").next()).expect("a text block");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(block, printed, "README.md's demo block differs from `tapegrad-demo`'s output");
}
