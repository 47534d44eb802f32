//! The fuzz corpora (fuzz/corpus/<target>) as regression tests: every
//! file replayed through the function its fuzz target calls, so that each
//! runs without a fuzzer, and the committed seed files checked against
//! what a test builds (`TSUNAGI_WRITE_SEEDS=1` writes them instead).

use std::path::{Path, PathBuf};

/// The corpus of fuzz target `target`.
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Every file of `target`'s corpus through `run`, in name order; a panic
/// names the file (the line before it says which input was running).
pub fn replay(target: &str, run: impl Fn(&[u8])) {
    let dir = dir(target);
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
        run(&data);
    }
    eprintln!("replayed {} corpus files", files.len());
}

/// The committed `seeds` (file name, content) of `target`'s corpus are
/// what the test built; with `TSUNAGI_WRITE_SEEDS=1` they are written
/// instead. `package` is the crate whose `fuzz_corpus` test rewrites them,
/// for the message that says how.
pub fn check_or_write(target: &str, seeds: Vec<(String, Vec<u8>)>, package: &str) {
    let dir = dir(target);
    let write = std::env::var("TSUNAGI_WRITE_SEEDS").as_deref() == Ok("1");
    if write {
        std::fs::create_dir_all(&dir).expect("create corpus dir");
    }
    for (name, seed) in seeds {
        let path = dir.join(&name);
        if write {
            std::fs::write(&path, &seed).expect("write seed");
            eprintln!("wrote {} ({} bytes)", path.display(), seed.len());
        } else {
            let on_disk =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                on_disk == seed,
                "{name} is stale: run `TSUNAGI_WRITE_SEEDS=1 cargo test -p {package} --test fuzz_corpus`"
            );
        }
    }
}
