//! Plants standard input in a repository as an object of a kind (`keys`, `snapshots`,
//! `index`, `data`), named by the hash of its bytes as Cairn names objects, optionally
//! encrypted first to the repository's public recipient (as anyone who can read its
//! config can): what `bench/hostile.sh` measures readers against. Prints the name.
//!
//! cargo run --release -p cairn-e2e --example plant -- REPO KIND [--encrypt] < bytes

use std::io::Read;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, kind, rest @ ..] = args.as_slice() else {
        panic!("usage: plant REPO KIND [--encrypt] < bytes");
    };
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .expect("reading standard input");
    let repo = Path::new(repo);
    if rest.iter().any(|a| a == "--encrypt") {
        bytes = cairn_e2e::hostile::encrypt_to_repository(repo, &bytes);
    }
    println!("{}", cairn_e2e::hostile::plant(repo, kind, &bytes));
}
