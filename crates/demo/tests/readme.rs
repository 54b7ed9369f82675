//! The README shows what the demo prints: its demo block is the binary's output, exactly,
//! its `fixes` block is the end of `fixes`' output (the answer over every setup), and
//! docs/demo.md holds the whole of it.

const README: &str = include_str!("../../../README.md");
const DEMO_DOC: &str = include_str!("../../../docs/demo.md");

#[test]
fn readme_demo_block_is_the_binarys_output() {
    let section = README.split("\n## The demo\n").nth(1).expect("a `## The demo` section");
    let block = section.split("```text\n").nth(1).and_then(|b| b.split("```").next()).expect("a text block");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(block, printed, "README.md's demo block differs from `tapegrad-demo`'s output");
}

#[test]
fn fixes_blocks_are_the_binarys_output() {
    let section = README.split("\n## Which fix for which optimizer").nth(1).expect("the `fixes` section");
    let section = section.split("\n## ").next().unwrap();
    let blocks: Vec<&str> =
        section.split("```text\n").skip(1).map(|b| b.split("```").next().expect("a closed block")).collect();
    assert_eq!(blocks.len(), 1, "the answer");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).arg("fixes").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(blocks[0].starts_with("The answer:"), "{}", blocks[0]);
    assert!(printed.ends_with(blocks[0]), "README.md's answer block is not the end of `tapegrad-demo fixes`'s output");
    // docs/demo.md shows the whole output
    let demo = DEMO_DOC.split("\n## `fixes`\n").nth(1).expect("the `fixes` section of docs/demo.md");
    let full = demo.split("```text\n").nth(1).and_then(|b| b.split("```").next()).expect("a text block");
    assert_eq!(full, printed, "docs/demo.md's fixes block differs from `tapegrad-demo fixes`");
}
