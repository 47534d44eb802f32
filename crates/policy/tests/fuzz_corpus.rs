//! Replays every file of the fuzz corpus (fuzz/corpus/policy_parse) through
//! the function the fuzz target calls, so each corpus file is a regression
//! test that runs without a fuzzer.

#[test]
fn replay_policy_parse_corpus() {
    tsunagi_testkit::corpus::replay("policy_parse", tsunagi_policy::fuzzing::policy_parse);
}
