//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay
//! test (`tests/fuzz_corpus.rs`), so that every corpus file is also a plain
//! regression test.
//!
//! They panic when an invariant breaks; that is how a fuzzer notices.
//! Nothing here is meant for production use.
