#![no_main]
//! Fuzz target: an arbitrary format file, compiled, then arbitrary bytes read with it. The input
//! is the file's text, a NUL byte, then the bytes to read. Compiling never panics; a file that
//! compiles reads anything with every record accounted for.

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::check_format_file(data);
});
