//! Encrypts standard input to a repository's public recipient, as anyone who can read
//! its config can: what `bench/hostile.sh` plants.
//!
//! cargo run --release -p cairn-e2e --example encrypt_to_repository -- REPO < plain > cipher

use std::io::{Read, Write};

fn main() {
    let repo = std::env::args_os()
        .nth(1)
        .expect("usage: encrypt_to_repository REPO < plaintext > ciphertext");
    let mut plaintext = Vec::new();
    std::io::stdin()
        .read_to_end(&mut plaintext)
        .expect("reading standard input");
    let sealed = cairn_e2e::hostile::encrypt_to_repository(std::path::Path::new(&repo), &plaintext);
    std::io::stdout()
        .write_all(&sealed)
        .expect("writing standard output");
}
