//! A small HTTP proxy in front of the S3 server that misbehaves on purpose: it
//! answers 503 SlowDown, resets connections in the middle of an upload, and cuts
//! or alters GET bodies, each on every Nth request of its kind. It also records
//! every PUT and every GET it passed on whole, so a test can tell whether an object
//! was uploaded, or downloaded, twice.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Which faults, each on every Nth request of its kind (0: never).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Any request answered `503 SlowDown` without reaching the server.
    pub slow_down: u32,
    /// A PUT whose connection is reset after half of its body.
    pub reset_upload: u32,
    /// A GET whose body stops halfway (the announced length stays).
    pub cut_get: u32,
    /// A GET answered with half its body and a Content-Length that says so.
    pub shorten_get: u32,
    /// A GET of a pack with one byte flipped.
    pub flip_get: u32,
}

#[derive(Debug, Default)]
struct State {
    faults: Faults,
    requests: u32,
    puts: u32,
    gets: u32,
    /// Paths of PUTs the server answered 200.
    stored: Vec<String>,
    /// Paths of GETs the server answered 200 or 206 and the proxy passed on whole.
    fetched: Vec<String>,
    /// How many faults were injected.
    injected: u32,
}

/// The proxy; runs until the test binary ends.
#[derive(Debug, Clone)]
pub struct FaultyProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultyProxy {
    pub fn start(upstream_port: u16, faults: Faults) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(client, upstream_port, &state);
                });
            }
        });
        FaultyProxy { port, state }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().expect("state").faults = faults;
    }

    pub fn injected(&self) -> u32 {
        self.state.lock().expect("state").injected
    }

    /// Paths of the objects uploaded successfully, in order, repeats included.
    pub fn stored(&self) -> Vec<String> {
        self.state.lock().expect("state").stored.clone()
    }

    /// Paths of the objects downloaded whole, in order, repeats included.
    pub fn fetched(&self) -> Vec<String> {
        self.state.lock().expect("state").fetched.clone()
    }
}

fn every(n: u32, count: u32) -> bool {
    n != 0 && count.is_multiple_of(n)
}

/// One request per client connection (the proxy answers `Connection: close`).
fn serve(mut client: TcpStream, upstream_port: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let (slow_down, reset, cut, shorten, flip) = {
        let mut s = state.lock().expect("state");
        s.requests += 1;
        let slow = every(s.faults.slow_down, s.requests);
        let (mut reset, mut cut, mut shorten, mut flip) = (false, false, false, false);
        if method == "PUT" && !slow {
            s.puts += 1;
            reset = every(s.faults.reset_upload, s.puts);
        }
        if method == "GET" && !slow {
            s.gets += 1;
            cut = every(s.faults.cut_get, s.gets);
            shorten = !cut && every(s.faults.shorten_get, s.gets);
            flip = !cut && !shorten && path.contains("/data/") && every(s.faults.flip_get, s.gets);
        }
        if slow || reset || cut || shorten || flip {
            s.injected += 1;
        }
        (slow, reset, cut, shorten, flip)
    };
    let mut body = vec![0u8; content_length];
    if reset {
        // Half the upload arrives, then the connection is reset (SO_LINGER 0).
        reader.read_exact(&mut body[..content_length / 2])?;
        let _ = rustix::net::sockopt::set_socket_linger(&client, Some(std::time::Duration::ZERO));
        return Ok(());
    }
    reader.read_exact(&mut body)?;
    if slow_down {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        write!(
            client,
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    for line in &head {
        upstream.write_all(line.as_bytes())?;
    }
    upstream.write_all(b"Connection: close\r\n\r\n")?;
    upstream.write_all(&body)?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |p| p + 4);
    let (head_bytes, answer_body) = answer.split_at(split);
    let status_ok =
        head_bytes.starts_with(b"HTTP/1.1 200") || head_bytes.starts_with(b"HTTP/1.1 206");
    if method == "PUT" && status_ok {
        state.lock().expect("state").stored.push(path.clone());
    }
    if method == "GET" && status_ok && answer_body.len() > 1 {
        if cut {
            client.write_all(head_bytes)?;
            client.write_all(&answer_body[..answer_body.len() / 2])?;
            client.shutdown(Shutdown::Both)?;
            return Ok(());
        }
        if shorten {
            let half = answer_body.len() / 2;
            let text = String::from_utf8_lossy(head_bytes);
            let rewritten: Vec<String> = text
                .split("\r\n")
                .map(|line| {
                    if line.to_ascii_lowercase().starts_with("content-length:") {
                        format!("Content-Length: {half}")
                    } else {
                        line.to_owned()
                    }
                })
                .collect();
            client.write_all(rewritten.join("\r\n").as_bytes())?;
            client.write_all(&answer_body[..half])?;
            return Ok(());
        }
        if flip {
            let mut altered = answer_body.to_vec();
            let middle = altered.len() / 2;
            altered[middle] ^= 0x40;
            client.write_all(head_bytes)?;
            client.write_all(&altered)?;
            return Ok(());
        }
    }
    if method == "GET" && status_ok {
        state.lock().expect("state").fetched.push(path);
    }
    client.write_all(&answer)?;
    Ok(())
}
