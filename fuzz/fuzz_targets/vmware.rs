#![no_main]
//! Fuzz target: arbitrary bytes through normalize, forced to the vmware format.

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(data, Some("vmware")));
