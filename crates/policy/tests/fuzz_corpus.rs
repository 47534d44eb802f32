//! Replays every file of the fuzz corpus (fuzz/corpus/policy_parse) through
//! the function the fuzz target calls, so each corpus file is a regression
//! test that runs without a fuzzer.

use std::path::Path;

#[test]
fn replay_policy_parse_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy_parse");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        eprintln!("replaying {}", file.display());
        tsunagi_policy::fuzzing::policy_parse(&data);
    }
    eprintln!("replayed {} corpus files", files.len());
}
