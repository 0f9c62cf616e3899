//! Text from outside (file names, link targets, user input) as it may be shown to a
//! person: like `ls -b`, every control character and every byte that is not UTF-8
//! escaped and a backslash doubled, so no name is a terminal command and two different
//! names never look alike; and long input cut for messages. The CLI, the console and
//! the daemon all show names through here.

/// Appends `c` escaped: `\a \b \t \n \v \f \r`, else `\xNN` below 0x100, else `\u{N}`.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// A name (any bytes) as shown: see the module.
pub fn name(raw: &[u8]) -> String {
    let mut shown = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => shown.push_str("\\\\"),
                c if c.is_control() => push_escaped(&mut shown, c),
                c => shown.push(c),
            }
        }
        for byte in chunk.invalid() {
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    shown
}

/// Whether [`name`] would change `text`.
pub fn needs_escaping(text: &str) -> bool {
    text.contains(|c: char| c.is_control() || c == '\\')
}

/// `text` cut to at most `max` bytes (at a character boundary), saying how long it
/// was: a 10 kB argument is not worth repeating in a message or storing whole.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_show_escapes_odd_bytes_and_backslashes_never_raw() {
        assert_eq!(name(b"a\x1b]0;PWNED\x07b"), "a\\x1b]0;PWNED\\ab");
        assert_eq!(name(b"new\nline\\back"), "new\\nline\\\\back");
        assert_eq!(name(b"a\xffb"), "a\\xffb");
        assert_ne!(name(b"a\xffb"), name(b"a\xfeb"));
        assert_eq!(name("csi \u{9b}".as_bytes()), "csi \\x9b");
        assert_eq!(name("plain/é.txt".as_bytes()), "plain/é.txt");
        assert!(!needs_escaping("plain/é.txt") && needs_escaping("a\\b"));
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let cut = cut(&"é".repeat(5000), 201);
        assert!(
            cut.starts_with(&"é".repeat(100)) && cut.len() < 240,
            "{cut}"
        );
        assert!(cut.ends_with("(10000 bytes in all)"), "{cut}");
        assert_eq!(super::cut("short", 10), "short");
    }
}
