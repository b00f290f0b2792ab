//! The byte-level scanners every SIP reader shares: character classes,
//! tokens, quoted strings, comma lists, `;` parameters, numbers and the
//! line structure of a header section (CR/LF, folding).
//!
//! Everything scans in place and hands back slices of its input: no
//! scanner allocates, so a response is read without a `String` per token.
//! The delimiters are all ASCII, so a byte scan never splits a UTF-8
//! character, and untrusted input yields `None` or a [`LexError`], never a
//! panic.

use std::borrow::Cow;

/// What a scanner found wrong; the text is fixed (no peer input in it), so
/// the caller adds the context it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LexError(pub &'static str);

// ---------------------------------------------------------------- classes

/// Linear whitespace inside a line (SP or HT).
pub(crate) fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii() && is_token_byte(c as u8)
}

/// A table of the bytes that are ASCII letters or digits or one of `extra`
/// (the character classes below are all of that shape).
const fn alnum_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut k = 0;
    while k < extra.len() {
        table[extra[k] as usize] = true;
        k += 1;
    }
    table
}

/// RFC 3261 `token` bytes, one lookup each (every header name and
/// parameter name of every message is checked with it).
const TOKEN_BYTES: [bool; 256] = alnum_and(b"-.!%*_+`'~");

/// Whether byte `b` is an RFC 3261 `token` character (never one of a
/// multi-byte character's bytes: those are all >= 0x80).
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

/// True for a non-empty string made only of RFC 3261 token characters.
pub(crate) fn is_token(s: &str) -> bool {
    // Bytes: token characters are ASCII, and no byte of a multi-byte
    // character is one.
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// RFC 3261 `word` characters (a Call-ID is `word [ "@" word ]`).
pub(crate) fn is_word_char(c: char) -> bool {
    is_token_char(c) || "()<>:\\\"/[]?{}".contains(c)
}

/// RFC 7230 `tchar` bytes: token characters of HTTP authentication
/// headers (wider than SIP's: `#$&^|` too), one lookup each (every name of
/// every challenge).
const TCHAR_BYTES: [bool; 256] = alnum_and(b"!#$%&'*+-.^_`|~");

/// Whether byte `b` is a `tchar` (never one of a multi-byte character's bytes).
pub(crate) fn is_tchar_byte(b: u8) -> bool {
    TCHAR_BYTES[usize::from(b)]
}

/// Control characters other than HT: never allowed inside a quoted string
/// or anything written into a header.
pub(crate) fn is_bad_control(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// True for a non-empty run of ASCII digits.
pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------- slicing

/// Splits `s` at byte `i` without panicking (a bad index keeps all of `s`).
pub(crate) fn split_str(s: &str, i: usize) -> (&str, &str) {
    match (s.get(..i), s.get(i..)) {
        (Some(a), Some(b)) => (a, b),
        _ => (s, ""),
    }
}

/// Splits before the first `c`; the second part starts with `c` or is empty.
pub(crate) fn split_before(s: &str, c: char) -> (&str, &str) {
    split_str(s, find_char(s, c).unwrap_or(s.len()))
}

/// Where the first `c` is in `s`. For an ASCII `c` a byte scan, eight
/// bytes at a time: the values searched here are short, where `str::find`'s
/// set-up costs more than the scan (and an ASCII byte is never part of a
/// multi-byte character).
pub(crate) fn find_char(s: &str, c: char) -> Option<usize> {
    if c.is_ascii() {
        find_byte(s.as_bytes(), c as u8)
    } else {
        s.find(c)
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `word` equal to the byte `pattern`
/// repeats. Only the lowest flag is exact (borrows only run upwards), and
/// that is the one a search wants: the first match.
fn flags(word: u64, pattern: u64) -> u64 {
    let w = word ^ pattern;
    w.wrapping_sub(ONES) & !w & HIGH
}

/// Offset of the first byte of `bytes` that `hit` flags in its word (as
/// [`flags`] does), eight bytes at a time; the last few bytes by `is`.
#[inline(always)]
fn find_by_words(bytes: &[u8], hit: impl Fn(u64) -> u64, is: impl Fn(u8) -> bool) -> Option<usize> {
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let found = hit(u64::from_le_bytes(
            <[u8; 8]>::try_from(word).unwrap_or_default(),
        ));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let found = bytes.get(at..)?.iter().position(|&x| is(x))?;
    Some(at + found)
}

/// Offset of the first `b` in `bytes`: eight bytes at a time, the byte
/// found from the word's mask, the last few byte by byte. (Sixteen at a
/// time with SSE2 gave nothing here: the values searched are short.)
pub(crate) fn find_byte(bytes: &[u8], b: u8) -> Option<usize> {
    let pattern = ONES * u64::from(b);
    find_by_words(bytes, |w| flags(w, pattern), |x| x == b)
}

/// Offset of the first `a` or `b` in `bytes`, as [`find_byte`] searches
/// (the lowest flag of either mask is exact, so the lowest of both is the
/// first of either).
pub(crate) fn find_either(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    find_by_words(bytes, |w| flags(w, pa) | flags(w, pb), |x| x == a || x == b)
}

/// [`str::split_once`] on a char, by [`find_char`].
pub(crate) fn split_once_char(s: &str, c: char) -> Option<(&str, &str)> {
    let at = find_char(s, c)?;
    Some((s.get(..at)?, s.get(at + c.len_utf8()..)?))
}

/// Splits a byte slice at `i` without panicking.
pub(crate) fn split_bytes(buf: &[u8], i: usize) -> (&[u8], &[u8]) {
    match (buf.get(..i), buf.get(i..)) {
        (Some(a), Some(b)) => (a, b),
        _ => (buf, &[]),
    }
}

/// Splits at the first `c`: the text before it and the text after it, or
/// all of `s` and `None` when there is no `c` (`name[=value]`, `user[:password]`).
pub(crate) fn split_once_opt(s: &str, c: char) -> (&str, Option<&str>) {
    match split_once_char(s, c) {
        Some((before, after)) => (before, Some(after)),
        None => (s, None),
    }
}

/// Splits off the longest prefix whose characters all satisfy `keep`.
pub(crate) fn take_while(s: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    split_str(s, s.find(|c| !keep(c)).unwrap_or(s.len()))
}

/// Splits off the leading run of RFC 3261 token characters.
pub(crate) fn take_token(s: &str) -> (&str, &str) {
    take_while(s, is_token_char)
}

/// Case-insensitive ASCII prefix removal on bytes.
pub(crate) fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

// ---------------------------------------------------------- quoted strings

/// Length in bytes of the quoted string that starts `s` (including both
/// quotes), or `None` if it is not terminated.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let mut bytes = s.bytes().enumerate();
    if bytes.next()?.1 != b'"' {
        return None;
    }
    skip_quoted(&mut bytes)
}

/// Advances past the closing quote of a quoted string whose opening quote
/// was just consumed; the offset just past that quote.
fn skip_quoted(bytes: &mut impl Iterator<Item = (usize, u8)>) -> Option<usize> {
    // Bytes: `\` and `"` are ASCII, and an escaped multi-byte character
    // only needs its first byte skipped (the others are >= 0x80).
    while let Some((i, b)) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next()?;
            }
            b'"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Removes surrounding quotes and resolves `\` escapes; unquoted text is
/// returned unchanged.
pub(crate) fn unquote(s: &str) -> String {
    unquoted(s).into_owned()
}

/// [`unquote`] without a copy where nothing changes (no quotes, or quotes
/// around text without escapes).
pub(crate) fn unquoted(s: &str) -> Cow<'_, str> {
    let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Cow::Borrowed(s);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Appends `s` as a quoted-string, escaping `"` and `\` (the inverse of
/// [`unquote`]).
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // Runs without `"` or `\` are copied whole (usually the whole text); both
    // are ASCII, so their offsets are char boundaries.
    while let Some(at) = find_either(rest.as_bytes(), b'"', b'\\') {
        let (run, special) = split_str(rest, at);
        let (special, tail) = split_str(special, 1);
        out.push_str(run);
        out.push('\\');
        out.push_str(special);
        rest = tail;
    }
    out.push_str(rest);
    out.push('"');
}

// ------------------------------------------------------------ comma lists

/// The elements of a header value's comma-separated list, lazily: commas
/// inside quotes or `<...>` do not split. Elements are trimmed; empty ones
/// are dropped.
pub(crate) fn list_items(value: &str) -> impl Iterator<Item = &str> {
    ListItems { rest: Some(value) }
        .map(|item| item.trim_matches(is_ws))
        .filter(|item| !item.is_empty())
}

/// Iterator behind [`list_items`]: untrimmed elements, empty ones included.
struct ListItems<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let value = self.rest?;
        let bytes = value.as_bytes();
        // No comma at all (most values: one Via, one Contact): one item,
        // found eight bytes at a time.
        if find_byte(bytes, b',').is_none() {
            self.rest = None;
            return Some(value);
        }
        let (mut in_quotes, mut in_angle) = (false, false);
        // Bytes: the delimiters are ASCII, so `i` is always a char boundary.
        // Runs of bytes that change nothing are skipped by one search each
        // (inside quotes only `\` and `"` matter, outside only `"<>,`). An
        // escaped multi-byte character has its first byte skipped; the
        // others (all >= 0x80) change nothing.
        let mut i = 0;
        loop {
            let rest = bytes.get(i..).unwrap_or_default();
            let found = if in_quotes {
                rest.iter().position(|&b| b == b'\\' || b == b'"')
            } else {
                rest.iter()
                    .position(|&b| matches!(b, b'"' | b'<' | b'>' | b','))
            };
            let Some(at) = found else { break };
            i += at;
            match (in_quotes, rest.get(at)) {
                (true, Some(b'\\')) => i += 1,
                (true, _) => in_quotes = false,
                (false, Some(b'"')) if !in_angle => in_quotes = true,
                (false, Some(b'<')) => in_angle = true,
                (false, Some(b'>')) => in_angle = false,
                (false, Some(b',')) if !in_angle => {
                    self.rest = value.get(i + 1..);
                    return Some(value.get(..i).unwrap_or_default());
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(value)
    }
}

// ------------------------------------------------------------- parameters

/// Calls `each` with the slices (name, value still quoted) of every
/// `;name[=value]` parameter in order, without collecting them; stops at the
/// first malformed one.
///
/// Leading whitespace is allowed and an empty string has no parameters.
/// Names must be tokens; a value is one whole quoted string, or text
/// without blanks, quotes or control characters.
pub(crate) fn for_each_param<'a>(
    s: &'a str,
    mut each: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), LexError> {
    let mut rest = s.trim_start_matches(is_ws);
    while !rest.is_empty() {
        let body = rest
            .strip_prefix(';')
            .ok_or(LexError("expected ';' before parameter"))?;
        if let Some((name, value, end)) = plain_param(body) {
            each(name, value);
            rest = body.get(end..).unwrap_or_default();
            continue;
        }
        let end = param_end(body).ok_or(LexError("unterminated quoted parameter"))?;
        let (param, tail) = split_str(body, end);
        let (name, value) = param_name_value(param)?;
        each(name, value);
        rest = tail;
    }
    Ok(())
}

/// The usual parameter, read in one pass: a token name, then `=` and a
/// value of plain characters (no blank, quote or control), up to a `;` or
/// the end. Returns the name, the value and where the parameter ends;
/// `None` for anything else (blanks, a quoted value, an error), which the
/// general reading takes, with the same result for what this one reads.
fn plain_param(body: &str) -> Option<(&str, Option<&str>, usize)> {
    let b = body.as_bytes();
    let name_end = b.iter().position(|&c| !is_token_byte(c)).unwrap_or(b.len());
    if name_end == 0 {
        return None;
    }
    let name = body.get(..name_end)?;
    match b.get(name_end) {
        None | Some(b';') => return Some((name, None, name_end)),
        Some(b'=') => {}
        Some(_) => return None,
    }
    let start = name_end + 1;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| c == b';' || !PLAIN_VALUE_BYTES[usize::from(c)])
        .unwrap_or(b.len() - start);
    let end = start + len;
    match b.get(end) {
        None | Some(b';') => Some((name, Some(body.get(start..end)?), end)),
        Some(_) => None,
    }
}

/// The first parameter named `name` (ignoring case), value still quoted;
/// an error if any parameter of the list is malformed (as [`for_each_param`]).
pub(crate) fn find_param<'a>(s: &'a str, name: &str) -> Result<Option<Option<&'a str>>, LexError> {
    let mut found = None;
    for_each_param(s, |n, value| {
        if found.is_none() && n.eq_ignore_ascii_case(name) {
            found = Some(value);
        }
    })?;
    Ok(found)
}

/// Byte offset of the `;` that ends the first parameter (or the length),
/// skipping quoted strings. `None` if a quote is left open.
fn param_end(s: &str) -> Option<usize> {
    // Bytes: the delimiters are ASCII and never part of a multi-byte character.
    let b = s.as_bytes();
    let semi = find_byte(b, b';').unwrap_or(b.len());
    // No quote before the first ';' (the usual case): it ends the parameter.
    if find_byte(b.get(..semi).unwrap_or_default(), b'"').is_none() {
        return Some(semi);
    }
    let mut bytes = s.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        match b {
            b';' => return Some(i),
            b'"' => {
                skip_quoted(&mut bytes)?;
            }
            _ => {}
        }
    }
    Some(s.len())
}

/// Reads one `name[=value]` parameter, value left as written.
fn param_name_value(p: &str) -> Result<(&str, Option<&str>), LexError> {
    let (name, value) = match p.bytes().position(|b| b == b'=') {
        Some(at) => {
            let (name, value) = split_str(p, at);
            (
                name,
                Some(value.get(1..).unwrap_or_default().trim_matches(is_ws)),
            )
        }
        None => (p, None),
    };
    let name = name.trim_matches(is_ws);
    if !is_token(name) {
        return Err(LexError("bad parameter name"));
    }
    if let Some(value) = value {
        if !is_param_value(value) {
            return Err(LexError("bad parameter value"));
        }
    }
    Ok((name, value))
}

/// Bytes of an unquoted ASCII parameter value: no blank, quote, control
/// character or DEL (ASCII whitespace other than SP is all control).
const PLAIN_VALUE_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        table[b] = b != b'"' as usize;
        b += 1;
    }
    table
};

/// A value is one whole quoted string, or text without blanks, quotes or
/// control characters.
fn is_param_value(v: &str) -> bool {
    // The usual case, one table lookup a byte: visible ASCII but '"'.
    if v.bytes().all(|b| PLAIN_VALUE_BYTES[usize::from(b)]) {
        return true;
    }
    if v.starts_with('"') {
        quoted_len(v) == Some(v.len()) && !v.chars().any(|c| c.is_ascii_control() && c != '\t')
    } else if v.is_ascii() {
        // ASCII that is not all plain holds a blank, a quote or a control.
        false
    } else {
        !v.chars()
            .any(|c| c == '"' || c.is_whitespace() || c.is_control())
    }
}

// ---------------------------------------------------------------- numbers

/// Parses delta-seconds (surrounding blanks allowed), clamping huge values
/// to `u32::MAX`.
pub(crate) fn parse_delta(s: &str) -> Option<u32> {
    let s = s.trim_matches(is_ws);
    if !is_digits(s) {
        return None;
    }
    Some(s.bytes().fold(0u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    }))
}

/// Parses a Content-Length (surrounding blanks allowed); `None` if not a
/// number or too large for `usize`.
pub(crate) fn parse_length(s: &str) -> Option<usize> {
    let s = s.trim_matches(is_ws);
    if !is_digits(s) {
        return None;
    }
    s.bytes().try_fold(0usize, |acc, b| {
        acc.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

/// Parses a decimal port number (no blanks, leading zeros allowed, at most
/// 65535).
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    if !is_digits(s) {
        return None;
    }
    // Checked arithmetic so that absurdly long digit strings cannot overflow.
    s.bytes().try_fold(0u16, |acc, b| {
        acc.checked_mul(10)?.checked_add(u16::from(b - b'0'))
    })
}

/// Decodes two hex digits, if that is what `pair` holds (a `%XX` escape).
pub(crate) fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    match pair? {
        [hi, lo] => {
            let hi = char::from(*hi).to_digit(16)?;
            let lo = char::from(*lo).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        }
        _ => None,
    }
}

// ------------------------------------------------------------------ lines

/// Number of leading CR and LF bytes.
pub(crate) fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// The first line without its line ending (the whole buffer if no LF).
pub(crate) fn first_line(buf: &[u8]) -> &[u8] {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Lines whose ends [`LineEnds`] records (a longer header section has the
/// rest found again by [`scan_line`]).
const RECORDED_LINES: usize = 40;

/// Set in a recorded line end when the line holds a control character
/// other than HT and a CR just before its LF.
const BAD_CONTROL: u32 = 1 << 31;

/// The lines of a header section as the scan that finds its end saw them:
/// how many there are, and where the first [`RECORDED_LINES`] end and
/// whether they hold a stray control character. The header reader walks
/// these instead of scanning the bytes a second time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LineEnds {
    /// Lines before the empty one (a bound on the header fields, so their
    /// list is sized once).
    count: usize,
    /// How many of `ends` are filled.
    recorded: usize,
    /// Offset of each line's LF, with [`BAD_CONTROL`].
    ends: [u32; RECORDED_LINES],
}

impl LineEnds {
    /// Lines known by number only (the header reader scans them): for a
    /// text that is not the bytes scanned (a lossy UTF-8 copy).
    pub(crate) fn count_only(count: usize) -> LineEnds {
        LineEnds {
            count,
            recorded: 0,
            ends: [0; RECORDED_LINES],
        }
    }

    /// Lines before the empty line.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Recorded line `k`: where its LF is and whether it holds a stray
    /// control character; `None` past the recorded ones.
    pub(crate) fn get(&self, k: usize) -> Option<(usize, bool)> {
        let e = *self.ends.get(k).filter(|_| k < self.recorded)?;
        Some(((e & !BAD_CONTROL) as usize, e & BAD_CONTROL != 0))
    }
}

/// Offset just past the empty line that ends the header section (LF or
/// CRLF line endings), if the buffer contains one, and its lines (see
/// [`LineEnds`]).
pub(crate) fn header_end_and_lines(buf: &[u8]) -> Option<(usize, LineEnds)> {
    let mut lines = LineEnds::count_only(0);
    let mut line_start = 0;
    let mut bad = false;
    let mut at = 0;
    loop {
        // Every LF is a control byte: the bytes between are skipped a word at a time.
        at += next_control(buf.get(at..)?);
        let lf = match (*buf.get(at)?, buf.get(at + 1)) {
            (b'\n', _) => at,
            // CR LF: the line end in one step.
            (b'\r', Some(b'\n')) => at + 1,
            // (A CR at the very end is not a line's: the section is incomplete.)
            (b'\t', _) | (b'\r', None) => {
                at += 1;
                continue;
            }
            _ => {
                bad = true;
                at += 1;
                continue;
            }
        };
        let line = buf.get(line_start..lf)?;
        if line.is_empty() || line == b"\r" {
            return Some((lf + 1, lines));
        }
        if let (Some(slot), Ok(end)) = (lines.ends.get_mut(lines.count), u32::try_from(lf)) {
            if end < BAD_CONTROL {
                *slot = end | if bad { BAD_CONTROL } else { 0 };
                lines.recorded = lines.count + 1;
            }
        }
        lines.count += 1;
        line_start = lf + 1;
        bad = false;
        at = lf + 1;
    }
}

/// Offset of the first ASCII control byte (below 0x20, or DEL) in `bytes`,
/// or its length. Every line end is such a byte, and most header bytes are
/// not, so this is the scan every line of every message goes through: on
/// x86-64 sixteen bytes at a time with SSE2 (part of every x86-64 CPU),
/// then the rest eight at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) fn next_control(bytes: &[u8]) -> usize {
    // SAFETY: this build's target has SSE2 (the cfg above).
    unsafe { next_control_sse2(bytes) }
}

/// [`next_control`] sixteen bytes at a time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn next_control_sse2(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let ceiling = _mm_set1_epi8(0x1f);
    let del = _mm_set1_epi8(0x7f);
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 16) {
        // SAFETY: `chunk` is 16 readable bytes, and an unaligned load needs
        // no alignment.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
        // A byte is at most 0x1f (unsigned) when the larger of it and 0x1f is 0x1f.
        let low = _mm_cmpeq_epi8(_mm_max_epu8(v, ceiling), ceiling);
        let found = _mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(v, del)));
        if found != 0 {
            return at + found.trailing_zeros() as usize;
        }
        at += 16;
    }
    at + next_control_by_words(bytes.get(at..).unwrap_or_default())
}

/// [`next_control`] where SSE2 is not part of the target.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) fn next_control(bytes: &[u8]) -> usize {
    next_control_by_words(bytes)
}

/// [`next_control`] eight bytes at a time, the byte found from the word's
/// mask.
fn next_control_by_words(bytes: &[u8]) -> usize {
    // Classic word tests for "some byte of w is": below 0x20 (bytes >= 0x80
    // are excluded by `!w`), and equal to 0x7f. As with [`flags`], the
    // lowest flagged byte is exact: it is the first control byte.
    let below = |w: u64| w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    find_by_words(
        bytes,
        |w| below(w) | flags(w, ONES * 0x7f),
        |b| b < 0x20 || b == 0x7f,
    )
    .unwrap_or(bytes.len())
}

/// Length of the first line of `rest` (up to its LF, or all of it) and
/// whether it holds a control character other than HT and a CR just before
/// the line end: one pass over the bytes for both.
pub(crate) fn scan_line(rest: &[u8]) -> (usize, bool) {
    let mut control = false;
    let mut i = 0;
    // Control characters are ASCII, and UTF-8 continuation bytes are all >= 0x80.
    loop {
        i += next_control(rest.get(i..).unwrap_or_default());
        match rest.get(i) {
            None => return (rest.len(), control),
            Some(b'\n') => return (i, control),
            Some(b'\t') => {}
            Some(b'\r') if rest.get(i + 1).is_none_or(|&next| next == b'\n') => {}
            Some(_) => control = true,
        }
        i += 1;
    }
}

/// A line of a header section that continues the previous field's value
/// (RFC 3261 §7.3.1 folding: it starts with SP or HT).
pub(crate) fn is_continuation(line: &str) -> bool {
    line.starts_with(is_ws)
}

// ----------------------------------------------------------------- cursor

/// A read position in a header value that only moves forward, at char
/// boundaries: for grammars read element by element (authentication
/// challenges).
pub(crate) struct Cursor<'a> {
    /// What is left to read.
    pub(crate) rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `s`.
    pub(crate) fn new(s: &'a str) -> Cursor<'a> {
        Cursor { rest: s }
    }

    /// True when all input is consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Skips spaces and tabs.
    pub(crate) fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start_matches(is_ws);
    }

    /// Consumes `c` if it comes next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Consumes the longest prefix whose bytes all satisfy `keep`, a class
    /// of ASCII bytes (one that keeps a byte >= 0x80 stops before that
    /// character instead of splitting it).
    pub(crate) fn take_ascii_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let end = self
            .rest
            .bytes()
            .position(|b| !(b.is_ascii() && keep(b)))
            .unwrap_or(self.rest.len());
        let (taken, rest) = split_str(self.rest, end);
        self.rest = rest;
        taken
    }

    /// Reads a quoted-string body after its opening `"`, undoing `\` escapes
    /// (borrowed from the input when there are none, the usual case).
    /// Control characters other than HT are refused, escaped or not. On an
    /// error the cursor has not moved.
    pub(crate) fn quoted_string(&mut self) -> Result<Cow<'a, str>, LexError> {
        let text = self.rest;
        // The usual value (a realm, a nonce) is plain ASCII up to its closing
        // quote: found by bytes, no character decoding. Anything else (an
        // escape, a control, a non-ASCII character) takes the general path.
        let plain_end = text
            .bytes()
            .position(|b| b == b'"' || b == b'\\' || (b < 0x20 && b != b'\t') || b >= 0x7f);
        if let Some(end) = plain_end.filter(|&end| text.as_bytes().get(end) == Some(&b'"')) {
            let (body, rest) = split_str(text, end);
            self.rest = rest.get(1..).unwrap_or_default();
            return Ok(Cow::Borrowed(body));
        }
        // Unescaped text so far: `text[..plain]`, or all of `owned` once an escape is seen.
        let mut owned: Option<String> = None;
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = chars.as_str();
                    return Ok(match owned {
                        Some(out) => Cow::Owned(out),
                        None => Cow::Borrowed(text.get(..i).unwrap_or_default()),
                    });
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) if !is_bad_control(escaped) => owned
                        .get_or_insert_with(|| text.get(..i).unwrap_or_default().to_owned())
                        .push(escaped),
                    _ => return Err(LexError("bad escape in quoted string")),
                },
                c if is_bad_control(c) => {
                    return Err(LexError("control character in quoted string"))
                }
                c => {
                    if let Some(out) = owned.as_mut() {
                        out.push(c);
                    }
                }
            }
        }
        Err(LexError("unterminated quoted string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &str) -> Vec<&str> {
        list_items(s).collect()
    }

    /// [`for_each_param`] without its one-pass reading of plain parameters.
    fn params_in_general(s: &str) -> Result<Vec<(&str, Option<&str>)>, LexError> {
        let mut out = Vec::new();
        let mut rest = s.trim_start_matches(is_ws);
        while !rest.is_empty() {
            let body = rest
                .strip_prefix(';')
                .ok_or(LexError("expected ';' before parameter"))?;
            let end = param_end(body).ok_or(LexError("unterminated quoted parameter"))?;
            let (param, tail) = split_str(body, end);
            out.push(param_name_value(param)?);
            rest = tail;
        }
        Ok(out)
    }

    #[test]
    fn plain_parameters_read_in_one_pass_as_in_general() {
        // Every text of up to six symbols from an alphabet of separators,
        // name and value characters, blanks, quotes and non-ASCII.
        let alphabet = [";", "a", "=", "b", "\"", " ", "\t", "\u{e9}", "%", "\\"];
        let mut texts = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..6 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            all.extend(texts.iter().cloned());
        }
        all.extend(
            [
                ";branch=z9hG4bK-abc;rport=5060;received=127.0.0.1",
                ";expires=600;+sip.instance=\"<urn:uuid:1>\";reg-id=1",
                ";lr;transport=tcp",
                ";a=b=c;d",
            ]
            .map(String::from),
        );
        for t in &all {
            assert_eq!(params(t), params_in_general(t), "{t:?}");
        }
    }

    fn params(s: &str) -> Result<Vec<(&str, Option<&str>)>, LexError> {
        let mut out = Vec::new();
        for_each_param(s, |n, v| out.push((n, v)))?;
        Ok(out)
    }

    #[test]
    fn the_tchar_and_token_tables_are_the_rfcs_sets() {
        // RFC 7230 §3.2.6 says it the other way round: any visible ASCII
        // character but the delimiters. SIP's token (RFC 3261 §25.1) is
        // tchar without `#$&^|`.
        for b in 0..=255u8 {
            let tchar = b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b);
            assert_eq!(is_tchar_byte(b), tchar, "byte {b:#04x}");
            let token = tchar && !b"#$&^|".contains(&b);
            assert_eq!(is_token_byte(b), token, "byte {b:#04x}");
        }
    }

    #[test]
    fn a_cursor_takes_ascii_runs_and_never_splits_a_character() {
        let mut c = Cursor::new("Digest realm");
        assert_eq!(c.take_ascii_while(is_tchar_byte), "Digest");
        assert_eq!(c.rest, " realm");
        assert_eq!(c.take_ascii_while(is_tchar_byte), "");
        // A class that would keep every byte still stops before non-ASCII.
        let mut c = Cursor::new("ab\u{e9}cd");
        assert_eq!(c.take_ascii_while(|_| true), "ab");
        assert_eq!(c.rest, "\u{e9}cd");
        let mut c = Cursor::new("nonce");
        assert_eq!(c.take_ascii_while(is_tchar_byte), "nonce");
        assert!(c.is_empty());
    }

    #[test]
    fn a_cursor_reads_quoted_strings_plain_escaped_and_refused() {
        let read = |s: &'static str| {
            let mut cur = Cursor::new(s);
            let got = cur.quoted_string();
            (
                got.map(|c| (matches!(c, Cow::Borrowed(_)), c.into_owned())),
                cur.rest,
            )
        };
        // (input after the opening quote, borrowed?, value, what is left)
        for (input, borrowed, value, rest) in [
            ("abc\", rest", true, "abc", ", rest"),
            ("\"", true, "", ""),
            ("a\tb\" x", true, "a\tb", " x"),
            ("h\u{e9}llo\"", true, "h\u{e9}llo", ""),
            (r#"a\"b\\c" z"#, false, r#"a"b\c"#, " z"),
            ("\u{e9}\\\u{e9}\"", false, "\u{e9}\u{e9}", ""),
        ] {
            assert_eq!(
                read(input),
                (Ok((borrowed, value.to_owned())), rest),
                "{input:?}"
            );
        }
        for bad in [
            "open",
            "",
            "tail\\",
            "ctl\u{1}\"",
            "del\u{7f}\"",
            "c1\u{85}\"",
            "esc\\\u{1}\"",
        ] {
            let (got, rest) = read(bad);
            assert!(got.is_err(), "{bad:?}");
            assert_eq!(rest, bad, "an error leaves the cursor in place");
        }
    }

    #[test]
    fn quoted_strings_with_escaped_quotes() {
        assert_eq!(quoted_len(r#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_len(r#""a\\" rest"#), Some(5));
        assert_eq!(quoted_len(r#""""#), Some(2));
        assert_eq!(quoted_len(r#""open\""#), None);
        assert_eq!(quoted_len(r#""open"#), None);
        assert_eq!(quoted_len("no quote"), None);
        assert_eq!(quoted_len(""), None);
        // An escaped non-ASCII character is skipped whole.
        assert_eq!(quoted_len("\"\\é\" x"), Some(5));
        assert_eq!(unquote(r#""a\"b\\c""#), r#"a"b\c"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\"half"), "\"half");
        assert!(matches!(
            unquoted("\"no escapes\""),
            Cow::Borrowed("no escapes")
        ));
        let mut out = String::new();
        push_quoted(&mut out, r#"a"b\c"#);
        assert_eq!(out, r#""a\"b\\c""#);
        assert_eq!(unquote(&out), r#"a"b\c"#);
        for text in ["", "\"", "\\\\", "\"\\x\"", "é\"ü\\", "no specials at all"] {
            let mut out = String::from("k=");
            push_quoted(&mut out, text);
            let escaped: String = text
                .chars()
                .flat_map(|c| {
                    (c == '"' || c == '\\')
                        .then_some('\\')
                        .into_iter()
                        .chain([c])
                })
                .collect();
            assert_eq!(out, format!("k=\"{escaped}\""));
            assert_eq!(unquote(&out[2..]), text);
        }
    }

    /// The list splitter as first written, byte by byte with a state
    /// machine: the reference for the one that skips runs.
    fn items_by_state_machine(value: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = Some(value);
        while let Some(value) = rest {
            let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
            let mut split = None;
            for (i, c) in value.bytes().enumerate() {
                if in_quotes {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_quotes = false,
                        _ => {}
                    }
                    continue;
                }
                match c {
                    b'"' if !in_angle => in_quotes = true,
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    b',' if !in_angle => {
                        split = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            match split {
                Some(i) => {
                    out.push(&value[..i]);
                    rest = Some(&value[i + 1..]);
                }
                None => {
                    out.push(value);
                    rest = None;
                }
            }
        }
        out.into_iter()
            .map(|item| item.trim_matches(is_ws))
            .filter(|item| !item.is_empty())
            .collect()
    }

    /// Every string of up to five pieces from the characters that matter
    /// (and a multi-byte one) splits as the state machine splits it.
    #[test]
    fn list_items_match_the_state_machine() {
        let pieces = ["a", ",", "\"", "\\", "<", ">", " ", "é"];
        let mut values = vec![String::new()];
        let mut last = values.clone();
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|v| pieces.map(|p| format!("{v}{p}")))
                .collect();
            values.extend(last.iter().cloned());
        }
        for v in &values {
            assert_eq!(items(v), items_by_state_machine(v), "{v:?}");
        }
    }

    #[test]
    fn commas_inside_quotes_and_angle_brackets_do_not_split() {
        // (The everyday cases are in message's split_list test.)
        assert_eq!(items("<sip:a@h?x=1,2>,b"), ["<sip:a@h?x=1,2>", "b"]);
        // A quote inside <...> is part of the URI, not the start of a string.
        assert_eq!(items("<sip:\"a@h>, b"), ["<sip:\"a@h>", "b"]);
        assert_eq!(items(""), Vec::<&str>::new());
        assert_eq!(items(" , ,\t"), Vec::<&str>::new());
        assert_eq!(items("\"unterminated, x"), ["\"unterminated, x"]);
        assert_eq!(items("<open, x"), ["<open, x"]);
        assert_eq!(items("é, ü,ö"), ["é", "ü", "ö"]);
        assert_eq!(items("\"\\é,\", x"), ["\"\\é,\"", "x"]);
    }

    #[test]
    fn parameters_empty_quoted_and_malformed() {
        assert_eq!(params(""), Ok(vec![]));
        assert_eq!(params(" \t"), Ok(vec![]));
        assert_eq!(
            params(";a=b ; c;d=\"q;x\";e="),
            Ok(vec![
                ("a", Some("b")),
                ("c", None),
                ("d", Some("\"q;x\"")),
                ("e", Some(""))
            ])
        );
        assert_eq!(params(";a=\"\\\";\""), Ok(vec![("a", Some("\"\\\";\""))]));
        assert_eq!(params(";v=é"), Ok(vec![("v", Some("é"))]));
        for (bad, why) in [
            ("a", "expected ';' before parameter"),
            (";", "bad parameter name"),
            (";;a", "bad parameter name"),
            (";a=\"open", "unterminated quoted parameter"),
            (";é", "bad parameter name"),
            (";a=b c", "bad parameter value"),
            (";a=\"x\"y", "bad parameter value"),
            (";a=\u{a0}", "bad parameter value"),
            (";a=\"\u{1}\"", "bad parameter value"),
        ] {
            assert_eq!(params(bad), Err(LexError(why)), "{bad:?}");
        }
        assert_eq!(find_param(";A=1;a=2", "a"), Ok(Some(Some("1"))));
        assert_eq!(find_param(";lr;x", "LR"), Ok(Some(None)));
        assert_eq!(find_param(";x", "y"), Ok(None));
        assert!(find_param(";x;=", "x").is_err());
    }

    /// The word-at-a-time search for either of two bytes finds what a
    /// byte-by-byte one finds: each of them, both, at every place of a
    /// word and past it, among fillers next to them.
    #[test]
    fn find_either_matches_a_byte_scan() {
        let slow = |buf: &[u8]| buf.iter().position(|&x| x == b'"' || x == b'\\');
        for len in 0..44 {
            for filler in [b'a', 0x00, 0x80, 0xff, b'"' + 1, b'\\' - 1, b'#'] {
                let mut buf = vec![filler; len];
                assert_eq!(find_either(&buf, b'"', b'\\'), None);
                for at in 0..len {
                    for first in [b'"', b'\\'] {
                        buf[at] = first;
                        assert_eq!(find_either(&buf, b'"', b'\\'), slow(&buf), "{len} {at}");
                        for later in at + 1..len {
                            for second in [b'"', b'\\'] {
                                buf[later] = second;
                                assert_eq!(find_either(&buf, b'"', b'\\'), Some(at));
                                buf[later] = filler;
                            }
                        }
                        buf[at] = filler;
                    }
                }
            }
        }
        // What push_quoted writes with it.
        let mut out = String::new();
        push_quoted(&mut out, "a\"b\\c d\"");
        assert_eq!(out, "\"a\\\"b\\\\c d\\\"\"");
    }

    /// The word-at-a-time search finds the first byte a byte-by-byte one
    /// finds, at every place of a word and past it, among fillers next to
    /// it (and bytes with the high bit set).
    #[test]
    fn find_byte_matches_a_byte_scan() {
        for len in 0..44 {
            for filler in [b'a', 0x00, 0x80, 0xff, b';' + 1, b';' - 1] {
                let mut buf = vec![filler; len];
                assert_eq!(find_byte(&buf, b';'), None);
                for wanted in [0x80u8, 0xfe] {
                    let slow = buf.iter().position(|&x| x == wanted);
                    assert_eq!(find_byte(&buf, wanted), slow, "{len} {filler} {wanted}");
                }
                for at in 0..len {
                    buf[at] = b';';
                    assert_eq!(find_byte(&buf, b';'), Some(at), "{len} {filler} {at}");
                    if at + 1 < len {
                        buf[at + 1] = b';';
                        assert_eq!(find_byte(&buf, b';'), Some(at));
                        buf[at + 1] = filler;
                    }
                    buf[at] = filler;
                }
            }
        }
    }

    /// The block and word scans find what a byte-by-byte one finds: every
    /// byte value at every place of a word and past it, among fillers that
    /// sit next to the tested ranges (UTF-8 bytes, SP, DEL's neighbours).
    #[test]
    fn next_control_matches_a_byte_scan() {
        let slow = |b: &[u8]| {
            b.iter()
                .position(|&c| c < 0x20 || c == 0x7f)
                .unwrap_or(b.len())
        };
        for filler in [b'a', b' ', b'!', 0x7e, 0x80, 0x9f, 0xa0, 0xff] {
            // Past two 16-byte blocks and into the word-at-a-time tail.
            for len in 0..44 {
                let mut buf = vec![filler; len];
                assert_eq!(next_control(&buf), slow(&buf));
                assert_eq!(next_control_by_words(&buf), slow(&buf));
                for at in 0..len {
                    for b in 0..=255u8 {
                        buf[at] = b;
                        assert_eq!(next_control(&buf), slow(&buf), "{filler} {len} {at} {b}");
                        assert_eq!(next_control_by_words(&buf), slow(&buf));
                        // A second byte after it must not hide or move it.
                        if at + 1 < len {
                            buf[at + 1] = 0x1f;
                            assert_eq!(next_control(&buf), slow(&buf));
                            buf[at + 1] = filler;
                        }
                    }
                    buf[at] = filler;
                }
            }
        }
    }

    #[test]
    fn folded_lines_and_line_ends() {
        let head = b"SIP/2.0 200 OK\r\nSubject: a\r\n  b\r\n\tc\r\nX: y\n\r\nbody";
        let counted = |b: &[u8]| header_end_and_lines(b).map(|(end, l)| (end, l.count()));
        assert_eq!(counted(head), Some((head.len() - 4, 5)));
        assert_eq!(counted(b"SIP/2.0 200 OK\r\nX: y\r\n"), None);
        assert_eq!(counted(b"\n"), Some((1, 0)));
        assert!(is_continuation("  b") && is_continuation("\tc"));
        assert!(!is_continuation("X: y") && !is_continuation(""));
        assert_eq!(scan_line(b"abc\r\ndef"), (4, false));
        assert_eq!(scan_line(b"a\tb\n"), (3, false));
        assert_eq!(scan_line(b"a\rb\n"), (3, true));
        assert_eq!(scan_line(b"a\0b"), (3, true));
        assert_eq!(scan_line(b"caf\xc3\xa9\x7f\n"), (6, true));
        assert_eq!(scan_line(b"end\r"), (4, false));
        assert_eq!(leading_crlf(b"\r\n\r\nSIP"), 4);
        assert_eq!(first_line(b"SIP/2.0 200 OK\r\nX"), b"SIP/2.0 200 OK");
        assert_eq!(first_line(b"no end"), b"no end");
        assert_eq!(strip_prefix_ci(b"sip/2.0 x", b"SIP/2.0 "), Some(&b"x"[..]));
        assert_eq!(strip_prefix_ci(b"SI", b"SIP"), None);
    }

    #[test]
    fn tokens_numbers_and_classes() {
        assert!(is_token("z9hG4bK-.!%*_+`'~"));
        assert!(!is_token("") && !is_token("a b") && !is_token("é") && !is_token("a#"));
        assert!(is_tchar_byte(b'#') && is_tchar_byte(b'|') && !is_token_char('#'));
        // The table says what RFC 3261's token rule says, for every byte and
        // some characters beyond ASCII.
        for c in (0..0x200).filter_map(char::from_u32) {
            let rule = c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
            assert_eq!(is_token_char(c), rule, "{c:?}");
            assert_eq!(is_token(&c.to_string()), rule, "{c:?}");
        }
        assert!(!is_word_char('@') && is_word_char('<') && is_word_char('?'));
        assert_eq!(take_token("SIP / 2.0"), ("SIP", " / 2.0"));
        assert_eq!(take_token("é"), ("", "é"));
        assert_eq!(split_str("abc", 9), ("abc", ""));
        assert_eq!(split_str("é", 1), ("é", ""));
        assert_eq!(split_before("a;b;c", ';'), ("a", ";b;c"));
        assert_eq!(split_once_opt("a=b=c", '='), ("a", Some("b=c")));
        assert_eq!(split_once_opt("a=", '='), ("a", Some("")));
        assert_eq!(split_once_opt("flag", '='), ("flag", None));
        assert_eq!(parse_delta(" 60\t"), Some(60));
        assert_eq!(parse_delta("99999999999"), Some(u32::MAX));
        assert_eq!(parse_delta("-1"), None);
        assert_eq!(parse_delta(""), None);
        assert_eq!(parse_length("12"), Some(12));
        assert_eq!(parse_length("99999999999999999999999999"), None);
        assert_eq!(parse_port("065535"), Some(65535));
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port(" 1"), None);
        assert_eq!(hex_pair(Some(b"4a")), Some(0x4a));
        assert_eq!(hex_pair(Some(b"4")), None);
        assert_eq!(hex_pair(Some(b"g0")), None);
    }

    #[test]
    fn cursor_reads_quoted_strings_in_place() {
        let mut c = Cursor::new("realm=\"a\\\"b\", nonce=\"plain\"");
        assert_eq!(c.take_ascii_while(is_tchar_byte), "realm");
        assert!(c.eat('=') && c.eat('"'));
        assert_eq!(c.quoted_string(), Ok(Cow::Owned("a\"b".to_owned())));
        assert!(c.eat(','));
        c.skip_ws();
        assert_eq!(c.take_ascii_while(is_tchar_byte), "nonce");
        assert!(c.eat('=') && c.eat('"'));
        assert!(matches!(c.quoted_string(), Ok(Cow::Borrowed("plain"))));
        assert!(c.is_empty());
        for (body, why) in [
            ("open", "unterminated quoted string"),
            ("a\\", "bad escape in quoted string"),
            ("a\\\r\"", "bad escape in quoted string"),
            ("a\nb\"", "control character in quoted string"),
        ] {
            let mut c = Cursor::new(body);
            assert_eq!(c.quoted_string(), Err(LexError(why)), "{body:?}");
            assert_eq!(c.rest, body, "the cursor stays put on an error");
        }
        let mut c = Cursor::new("\"tab\tand é\"");
        assert!(c.eat('"'));
        assert_eq!(c.quoted_string(), Ok(Cow::Borrowed("tab\tand é")));
    }
}
