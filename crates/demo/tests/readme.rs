//! The README shows what the demo prints: its demo block is the binary's output, exactly,
//! and so are its two `fixes` blocks (the table, then the answer over every setup).

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

#[test]
fn readme_fixes_blocks_are_the_binarys_output() {
    let section = README.split("\n## Which fix for which optimizer").nth(1).expect("the `fixes` section");
    let section = section.split("\n## ").next().unwrap();
    let blocks: Vec<&str> =
        section.split("```text\n").skip(1).map(|b| b.split("```").next().expect("a closed block")).collect();
    assert_eq!(blocks.len(), 2, "the table and the answer");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).arg("fixes").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(blocks[1].starts_with("The answer:"), "{}", blocks[1]);
    assert_eq!(
        format!("{}\n{}", blocks[0], blocks[1]),
        printed,
        "README.md's fixes blocks differ from `tapegrad-demo fixes`"
    );
}
