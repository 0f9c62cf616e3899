//! Generates the benchmark corpus: reproducible from a seed.
//!
//! `gen_corpus DIR SEED SCALE` writes about `1.5 GB * SCALE`: ~60k small text-like files
//! in nested directories (40%), a few large compressible files (log-like text, 30%) and
//! a few large incompressible ones (30%).
//! `gen_corpus --mutate DIR SEED PERCENT` rewrites PERCENT of the small files.

use std::fs;
use std::path::Path;

use cairn_e2e::corpus::Rng;

fn small_files(root: &Path, rng: &mut Rng, count: usize, total: usize) {
    let per = total / count.max(1);
    for i in 0..count {
        // About 30 files a directory, three levels deep, as in a source tree or a mail store.
        let d = i / 30;
        let dir = root.join(format!(
            "src/a{:02}/b{:02}/c{:03}",
            d % 17,
            (d / 17) % 13,
            d / 221
        ));
        fs::create_dir_all(&dir).expect("mkdir");
        let len = 200 + (rng.next_u64() as usize % (per * 2));
        fs::write(dir.join(format!("file-{i:06}.txt")), rng.text(len)).expect("write");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--mutate") {
        let (root, seed, percent) = (
            Path::new(&args[1]),
            args[2].parse::<u64>().expect("seed"),
            args[3].parse::<f64>().expect("percent"),
        );
        let mut rng = Rng::new(seed);
        let mut files = Vec::new();
        let mut pending = vec![root.join("src")];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path)
                } else {
                    files.push(path)
                }
            }
        }
        files.sort();
        let every = (100.0 / percent).round().max(1.0) as usize;
        let mut changed = 0;
        for path in files.iter().step_by(every) {
            let len = fs::metadata(path).expect("stat").len() as usize;
            fs::write(path, rng.text(len.max(100))).expect("rewrite");
            changed += 1;
        }
        println!("rewrote {changed} of {} files", files.len());
        return;
    }
    let (root, seed, scale) = (
        Path::new(&args[0]),
        args[1].parse::<u64>().expect("seed"),
        args[2].parse::<f64>().expect("scale"),
    );
    let mut rng = Rng::new(seed);
    let total = (1.5e9 * scale) as usize;
    small_files(
        root,
        &mut rng,
        ((60_000.0 * scale) as usize).max(10),
        total * 4 / 10,
    );
    let big = root.join("big");
    fs::create_dir_all(&big).expect("mkdir");
    for i in 0..3 {
        let size = total / 10;
        let mut text = std::io::BufWriter::new(
            fs::File::create(big.join(format!("app-{i}.log"))).expect("create"),
        );
        let mut written = 0;
        while written < size {
            let line = format!(
                "2026-11-{:02}T{:02}:{:02}:{:02}Z host-{} request id={} status={} ",
                1 + rng.next_u64() % 28,
                rng.next_u64() % 24,
                rng.next_u64() % 60,
                rng.next_u64() % 60,
                rng.next_u64() % 16,
                rng.next_u64() % 100_000,
                [200, 200, 200, 404, 500][(rng.next_u64() % 5) as usize]
            );
            let mut bytes = line.into_bytes();
            bytes.extend_from_slice(&rng.text(60));
            bytes.push(b'\n');
            std::io::Write::write_all(&mut text, &bytes).expect("write");
            written += bytes.len();
        }
        let random = rng.bytes(total / 10);
        fs::write(big.join(format!("media-{i}.bin")), random).expect("write");
    }
    println!(
        "corpus of about {} MB in {}",
        total / 1_000_000,
        root.display()
    );
}
