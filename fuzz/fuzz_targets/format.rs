#![no_main]
//! Fuzz target: arbitrary bytes through normalize, forced to one format of the registry, which
//! the first byte picks (so a format added to the registry is fuzzed without a target of its own).

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check_picked(data));
