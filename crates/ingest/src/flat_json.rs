//! A scanner for the JSON lines ingestion mostly meets: one object of scalars and lists, strings
//! without escapes. It reads such a line several times faster than a general deserializer (no
//! visitor calls, no UTF-8 re-validation: the line is a `&str` already), and gives up on anything
//! else — an escape, a nested object, an integer outside `i64`, `-0`, a double out of range, or
//! any syntax error — so that the caller reads the line again with serde_json, which also says
//! what is wrong with it.
//! What it does read, it reads as serde_json would (fractions with Rust's own correctly rounded
//! parser).

use std::borrow::Cow;

use crate::record::{Cell, Fields, Record};

/// Reads the object in `line` into `record`; `None` when the line needs the general reader
/// (`record` may then hold some of its cells).
pub(crate) fn read_object<'a>(
    line: &'a str,
    fields: &mut Fields,
    record: &mut Record<'a>,
) -> Option<()> {
    let mut scan = Scan {
        text: line,
        bytes: line.as_bytes(),
        at: 0,
    };
    scan.skip_space();
    scan.expect(b'{')?;
    scan.skip_space();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        let mut position = 0;
        loop {
            // The key the last line had here (with its colon), if this line has it too;
            // otherwise read.
            let slot = match fields.key_at(position) {
                Some((quoted, slot)) if scan.next_is(quoted) => {
                    scan.at += quoted.len();
                    slot
                }
                _ => {
                    let key = scan.string()?;
                    scan.skip_space();
                    scan.expect(b':')?;
                    fields.slot_at(position, key)
                }
            };
            scan.skip_space();
            match slot {
                Some(slot) => {
                    let cell = scan.value()?;
                    record.set(slot, cell);
                }
                None => scan.skip_value()?,
            }
            position += 1;
            scan.skip_space();
            match scan.next()? {
                b',' => scan.skip_space(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.skip_space();
    (scan.at == scan.bytes.len()).then_some(())
}

struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// Whether the bytes at the cursor are `bytes`.
    fn next_is(&self, bytes: &[u8]) -> bool {
        self.bytes
            .get(self.at..self.at + bytes.len())
            .is_some_and(|next| crate::bytes::same_bytes(next, bytes))
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// A string at the cursor, borrowed: `None` if it has an escape or a control character.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = &self.bytes[start..];
        let len = crate::bytes::string_end(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..start + len)
    }

    fn literal(&mut self, word: &[u8], cell: Cell<'a>) -> Option<Cell<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| {
            self.at = end;
            cell
        })
    }

    fn value(&mut self) -> Option<Cell<'a>> {
        match self.peek()? {
            b'"' => self.string().map(|s| Cell::Str(Cow::Borrowed(s))),
            b't' => self.literal(b"true", Cell::Bool(true)),
            b'f' => self.literal(b"false", Cell::Bool(false)),
            b'n' => self.literal(b"null", Cell::Null),
            b'[' => self.list(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn list(&mut self) -> Option<Cell<'a>> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Some(Cell::List(items));
        }
        loop {
            self.skip_space();
            items.push(self.value()?);
            self.skip_space();
            match self.next()? {
                b',' => {}
                b']' => return Some(Cell::List(items)),
                _ => return None,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    /// Moves past a number: `None` if it is not a JSON number, else where its integer digits
    /// are and whether it has a fraction or an exponent.
    fn skip_number(&mut self) -> Option<NumberShape> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        let int_digits = self.digits();
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        Some(NumberShape {
            negative,
            int_start,
            int_digits,
            float,
        })
    }

    /// A number as serde_json reads it: a whole number in `i64` is a long, anything with a
    /// fraction or an exponent a double. Whole numbers outside `i64`, `-0` (a double there) and
    /// doubles out of range (an error there) are left to serde_json.
    fn number(&mut self) -> Option<Cell<'a>> {
        let start = self.at;
        let shape = self.skip_number()?;
        if shape.float {
            let d: f64 = self.text[start..self.at].parse().ok()?;
            return d.is_finite().then_some(Cell::Double(d));
        }
        // At most 18 digits always fit; longer ones are left to serde_json's own rules.
        if shape.int_digits > 18 {
            return None;
        }
        let magnitude = self.bytes[shape.int_start..self.at]
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        match (shape.negative, magnitude) {
            (true, 0) => None,
            (true, m) => Some(Cell::Long(-m)),
            (false, m) => Some(Cell::Long(m)),
        }
    }

    /// Moves past a value nothing reads, making no cell of it.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.skip_number().map(drop),
            // Literals cost nothing to make, and lists of values nothing reads are rare.
            _ => self.value().map(drop),
        }
    }
}

/// What [`Scan::skip_number`] saw.
struct NumberShape {
    negative: bool,
    int_start: usize,
    int_digits: usize,
    float: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner's record, or `None` where it gives up.
    fn fast(line: &str) -> Option<Vec<(String, Cell<'static>)>> {
        let mut fields = Fields::new(true);
        let mut record = Record::new(&fields);
        read_object(line, &mut fields, &mut record)?;
        Some(cells(&fields, &record))
    }

    fn cells(fields: &Fields, record: &Record) -> Vec<(String, Cell<'static>)> {
        fields
            .names()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), record.get(i).clone().into_owned()))
            .collect()
    }

    /// What serde_json makes of the line, through the general reader.
    fn general(line: &str) -> Option<Vec<(String, Cell<'static>)>> {
        let mut fields = Fields::new(true);
        let mut record = Record::new(&fields);
        record.read_json_general(line, &mut fields).ok()?;
        Some(cells(&fields, &record))
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for line in [
            r#"{"time":"2015-09-12T00:46:58.771Z","page":"Main","added":36,"delta":-12,"ratio":0.5}"#,
            r#" { "a" : true , "b":false,"c":null, "d":[ "x" , 1, 2.5e3, [true], [] ] } "#,
            r#"{}"#,
            r#"{"e":1E-2,"z":0,"f":-0.0,"g":-1.5e+300,"h":0.1}"#,
            r#"{"unicode":"Ünïcödé ☃","a":1,"a":2}"#,
            r#"{"n":123456789012345678,"m":-123456789012345678}"#,
        ] {
            assert!(general(line).is_some(), "{line}");
            assert_eq!(general(line), fast(line), "{line}");
        }
    }

    #[test]
    fn reads_common_lines_itself() {
        let got = fast(r#"{"s":"x","n":-5,"d":1.25,"l":["a",null],"b":true}"#).unwrap();
        assert_eq!(
            got,
            vec![
                ("s".into(), Cell::Str("x".into())),
                ("n".into(), Cell::Long(-5)),
                ("d".into(), Cell::Double(1.25)),
                (
                    "l".into(),
                    Cell::List(vec![Cell::Str("a".into()), Cell::Null])
                ),
                ("b".into(), Cell::Bool(true)),
            ]
        );
    }

    #[test]
    fn keys_are_matched_by_position_only_when_equal() {
        let mut fields = Fields::new(true);
        let mut read = |line: &'static str| {
            let mut record = Record::new(&fields);
            if read_object(line, &mut fields, &mut record).is_none() {
                record.read_json_general(line, &mut fields).unwrap();
            }
            cells(&fields, &record)
                .into_iter()
                .filter(|(_, c)| *c != Cell::Missing)
                .collect::<Vec<_>>()
        };
        let cell = |k: &str, v: i64| (k.to_string(), Cell::Long(v));
        assert_eq!(read(r#"{"a":1,"ab":2}"#), [cell("a", 1), cell("ab", 2)]);
        // Other keys at the same positions: a longer one, a shorter one, swapped ones.
        assert_eq!(read(r#"{"ab":3,"a":4}"#), [cell("a", 4), cell("ab", 3)]);
        assert_eq!(read(r#"{"abc":5,"a":6}"#), [cell("a", 6), cell("abc", 5)]);
        // A key with an escape, read by serde_json and remembered as JSON writes it, is told
        // apart from a key whose raw bytes look like it.
        assert_eq!(read(r#"{"a\\b":7}"#), [cell("a\\b", 7)]);
        assert_eq!(read(r#"{"a\\b":8}"#), [cell("a\\b", 8)]);
        assert_eq!(read(r#"{"a\bb":9}"#)[..1], [cell("a\u{8}b", 9)]);
    }

    #[test]
    fn skips_values_nothing_reads() {
        let mut fields = Fields::new(false);
        let wanted = fields.register("w");
        let line = r#"{"a":"x","b":-1.5e3,"c":[1,["y"]],"d":true,"e":null,"w":7,"f":123456789012345678901234}"#;
        let mut record = Record::new(&fields);
        assert!(read_object(line, &mut fields, &mut record).is_some());
        assert_eq!(record.get(wanted), &Cell::Long(7));
        assert_eq!(fields.len(), 1);
        for bad in [
            r#"{"a":01,"w":1}"#,
            r#"{"a":tru,"w":1}"#,
            r#"{"a":{},"w":1}"#,
        ] {
            let mut record = Record::new(&fields);
            assert!(
                read_object(bad, &mut fields, &mut record).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn gives_up_on_what_it_does_not_read() {
        for line in [
            r#"{"a":"with \" escape"}"#,
            r#"{"a":{"nested":1}}"#,
            r#"{"a":18446744073709551615}"#,
            r#"{"a":9223372036854775807}"#,
            r#"{"a":1e400}"#,
            r#"{"a":-0}"#,
            "{\"a\":\"raw\ttab\"}",
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1} x"#,
            r#"[1,2]"#,
            r#"{"a":tru}"#,
            r#"{"a" 1}"#,
            r#"{"a":1"#,
            "",
        ] {
            assert_eq!(fast(line), None, "{line}");
        }
    }
}
