//! A parsed input record: one cell per field the ingestion needs, borrowed from the input line
//! where it can be. Fields are numbered once per task (`Fields`), so a record is a vector indexed
//! by field number, not a map keyed by name: parsing a JSON line allocates for escaped strings
//! and lists only, and skips the fields nothing uses.

use std::borrow::Cow;
use std::fmt;

use hashbrown::HashMap;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One field's value in a record.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Cell<'a> {
    /// Not in the record.
    #[default]
    Missing,
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(Cow<'a, str>),
    List(Vec<Cell<'a>>),
    /// A nested object, kept as its JSON text.
    Object(String),
}

impl<'a> Cell<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Missing | Cell::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a number: numbers, numeric strings (trimmed), booleans as 0/1.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Long(l) => Some(*l as f64),
            Cell::Double(d) => Some(*d),
            Cell::Str(s) => s.trim().parse().ok(),
            Cell::Bool(b) => Some(*b as i64 as f64),
            _ => None,
        }
    }

    /// The value as a whole number, exact for longs (no round trip through f64).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Long(l) => Some(*l),
            Cell::Str(s) => {
                let s = s.trim();
                s.parse()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().map(|d| d as i64))
            }
            other => other.as_f64().map(|d| d as i64),
        }
    }

    /// The value as a string dimension value; `None` for null.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Missing | Cell::Null => None,
            Cell::Str(s) => Some(Cow::Borrowed(s)),
            Cell::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Cell::Long(l) => Some(Cow::Owned(l.to_string())),
            // As JSON prints it (1.0 stays "1.0").
            Cell::Double(d) => Some(Cow::Owned(Value::from(*d).to_string())),
            Cell::List(_) => Some(Cow::Owned(self.to_json().to_string())),
            Cell::Object(json) => Some(Cow::Borrowed(json)),
        }
    }

    /// The cell with its borrow released.
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Missing => Cell::Missing,
            Cell::Null => Cell::Null,
            Cell::Bool(b) => Cell::Bool(b),
            Cell::Long(l) => Cell::Long(l),
            Cell::Double(d) => Cell::Double(d),
            Cell::Str(s) => Cell::Str(Cow::Owned(s.into_owned())),
            Cell::List(items) => Cell::List(items.into_iter().map(Cell::into_owned).collect()),
            Cell::Object(o) => Cell::Object(o),
        }
    }

    pub fn from_json(v: &Value) -> Cell<'static> {
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(l) => Cell::Long(l),
                None => Cell::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Cell::Str(Cow::Owned(s.clone())),
            Value::Array(items) => Cell::List(items.iter().map(Cell::from_json).collect()),
            Value::Object(_) => Cell::Object(v.to_string()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Cell::Missing | Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Long(l) => Value::from(*l),
            Cell::Double(d) => Value::from(*d),
            Cell::Str(s) => Value::String(s.to_string()),
            Cell::List(items) => Value::Array(items.iter().map(Cell::to_json).collect()),
            Cell::Object(o) => serde_json::from_str(o).unwrap_or(Value::Null),
        }
    }
}

impl fmt::Display for Cell<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// How many key positions [`Fields::slot_at`] remembers.
const MAX_REMEMBERED_KEYS: usize = 256;

/// The fields a task reads, numbered. `open` registries (schemaless ingestion) number every
/// field they meet; closed ones only those named up front, and records skip the rest.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    names: Vec<String>,
    index: HashMap<String, usize>,
    open: bool,
    /// The keys of the last JSON object read, in order, as compact JSON writes them with their
    /// colon (`"name":`), with their slots: lines of one input nearly always name their fields
    /// in the same order, so the key at position `i` is recognised by comparing the line's next
    /// bytes with it, without finding where the key ends or hashing it.
    last_order: Vec<(Box<[u8]>, Option<usize>)>,
}

impl Fields {
    pub fn new(open: bool) -> Self {
        Fields {
            open,
            ..Fields::default()
        }
    }

    /// The field's number, registering it if new.
    pub fn register(&mut self, name: &str) -> usize {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    pub fn slot(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The slot for a field met in a record: known, or registered when open; `None` when
    /// nothing reads it.
    pub fn slot_for(&mut self, name: &str) -> Option<usize> {
        match self.index.get(name) {
            Some(i) => Some(*i),
            None if self.open => Some(self.register(name)),
            None => None,
        }
    }

    /// [`Self::slot_for`] the key at `position` in its object, remembered for the next object.
    pub fn slot_at(&mut self, position: usize, name: &str) -> Option<usize> {
        if let Some((quoted, slot)) = self.last_order.get(position) {
            if crate::bytes::same_bytes(&quoted[1..quoted.len() - 2], name.as_bytes()) {
                return *slot;
            }
        }
        let slot = self.slot_for(name);
        // As JSON writes it, escapes and all: a line whose bytes are these has this key.
        let quoted: Box<[u8]> = format!("{}:", Value::from(name)).into_bytes().into();
        if position < self.last_order.len() {
            self.last_order[position] = (quoted, slot);
        } else if position == self.last_order.len() && position < MAX_REMEMBERED_KEYS {
            self.last_order.push((quoted, slot));
        }
        slot
    }

    /// The key at `position` in the last object [`Self::slot_at`] was asked about, quoted
    /// as compact JSON writes it with its colon (`"name":`), and its slot.
    pub(crate) fn key_at(&self, position: usize) -> Option<(&[u8], Option<usize>)> {
        self.last_order
            .get(position)
            .map(|(quoted, slot)| (&quoted[..], *slot))
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Why an input row is unusable (counted as unparseable); the message is what reports show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RowError(pub String);

impl From<String> for RowError {
    fn from(message: String) -> Self {
        RowError(message)
    }
}

impl From<&str> for RowError {
    fn from(message: &str) -> Self {
        RowError(message.to_string())
    }
}

impl From<crate::timestamp::TimestampError> for RowError {
    fn from(e: crate::timestamp::TimestampError) -> Self {
        RowError(e.to_string())
    }
}

/// One record's cells, indexed by field number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record<'a> {
    pub cells: Vec<Cell<'a>>,
}

impl<'a> Record<'a> {
    pub fn new(fields: &Fields) -> Self {
        Record {
            cells: vec![Cell::Missing; fields.len()],
        }
    }

    /// This record with no cells, its allocation kept for another line: with its cells
    /// dropped it borrows nothing, so it can borrow from another line.
    pub fn emptied<'b>(mut self) -> Record<'b> {
        self.cells.clear();
        // Collecting an emptied vector into one of the same layout reuses its allocation.
        let cells: Vec<Cell<'b>> = self.cells.into_iter().map(|_| Cell::Missing).collect();
        Record { cells }
    }

    /// A missing cell for every field.
    pub fn fill(&mut self, fields: &Fields) {
        // Made in place: `resize` would clone a `Missing` through `Clone` for every cell.
        self.cells.resize_with(fields.len(), || Cell::Missing);
    }

    pub fn get(&self, slot: usize) -> &Cell<'a> {
        self.cells.get(slot).unwrap_or(&Cell::Missing)
    }

    #[inline]
    pub fn set(&mut self, slot: usize, cell: Cell<'a>) {
        if slot >= self.cells.len() {
            self.cells.resize_with(slot + 1, || Cell::Missing);
        }
        let old = std::mem::replace(&mut self.cells[slot], cell);
        // Nearly always `Missing` (a key given twice is not): nothing to drop then.
        if matches!(old, Cell::Missing) {
            std::mem::forget(old);
        }
    }

    /// Reads one JSON object from `line` into this record (fields `fields` does not want are
    /// skipped). `Err` says what is wrong with the line.
    pub fn read_json(&mut self, line: &'a str, fields: &mut Fields) -> Result<(), RowError> {
        if crate::flat_json::read_object(line, fields, self).is_some() {
            return Ok(());
        }
        // What the scanner left half read is read again from the start.
        self.cells.iter_mut().for_each(|c| *c = Cell::Missing);
        self.read_json_general(line, fields)
    }

    /// [`Self::read_json`] through serde_json, for every line the fast scanner gives up on.
    pub(crate) fn read_json_general(
        &mut self,
        line: &'a str,
        fields: &mut Fields,
    ) -> Result<(), RowError> {
        let mut de = serde_json::Deserializer::from_str(line);
        ObjectSeed {
            fields,
            record: self,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| match e.classify() {
            // Well-formed JSON of another type than the object asked for.
            serde_json::error::Category::Data => "the line is JSON but not an object".into(),
            _ => RowError(format!("invalid JSON: {e}")),
        })
    }

    /// A record from a JSON object (tests and tools).
    pub fn from_json(object: &Value, fields: &mut Fields) -> Record<'static> {
        let mut record = Record::new(fields);
        if let Value::Object(o) = object {
            for (k, v) in o {
                if let Some(slot) = fields.slot_for(k) {
                    record.set(slot, Cell::from_json(v));
                }
            }
        }
        record
    }
}

struct ObjectSeed<'f, 'r, 'a> {
    fields: &'f mut Fields,
    record: &'r mut Record<'a>,
}

impl<'de, 'a> DeserializeSeed<'de> for ObjectSeed<'_, '_, 'a>
where
    'de: 'a,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'a> Visitor<'de> for ObjectSeed<'_, '_, 'a>
where
    'de: 'a,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let mut position = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let slot = self.fields.slot_at(position, &key);
            position += 1;
            match slot {
                Some(slot) => {
                    let cell: Cell<'de> = map.next_value::<CellDe<'de>>()?.0;
                    self.record.set(slot, cell);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A map key, borrowed from the input unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A cell read from JSON, strings borrowed where possible.
struct CellDe<'de>(Cell<'de>);

impl<'de> de::Deserialize<'de> for CellDe<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CellVisitor).map(CellDe)
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Cell<'de>, E> {
        Ok(Cell::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, l: i64) -> Result<Cell<'de>, E> {
        Ok(Cell::Long(l))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Cell<'de>, E> {
        Ok(i64::try_from(u).map_or(Cell::Double(u as f64), Cell::Long))
    }
    fn visit_f64<E: de::Error>(self, d: f64) -> Result<Cell<'de>, E> {
        Ok(Cell::Double(d))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Owned(s)))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Cell<'de>, S::Error> {
        let mut items = Vec::new();
        while let Some(CellDe(c)) = seq.next_element::<CellDe<'de>>()? {
            items.push(c);
        }
        Ok(Cell::List(items))
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Cell<'de>, M::Error> {
        let v: Value = de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Cell::Object(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_wanted_fields_borrowing_strings() {
        let mut fields = Fields::new(false);
        let page = fields.register("page");
        let n = fields.register("n");
        let tags = fields.register("tags");
        let line = r#"{"skip":{"deep":[1,2]},"page":"Main","n":12,"tags":["a","b\"c"],"x":null}"#;
        let mut rec = Record::new(&fields);
        rec.read_json(line, &mut fields).unwrap();
        assert_eq!(fields.len(), 3, "unwanted fields not registered");
        assert!(matches!(rec.get(page), Cell::Str(Cow::Borrowed("Main"))));
        assert_eq!(rec.get(n), &Cell::Long(12));
        assert_eq!(
            rec.get(tags),
            &Cell::List(vec![Cell::Str("a".into()), Cell::Str("b\"c".into())])
        );
    }

    #[test]
    fn an_emptied_record_keeps_its_allocation() {
        let mut fields = Fields::new(true);
        let mut rec = Record::new(&fields);
        rec.read_json(r#"{"a":"x","b":2}"#, &mut fields).unwrap();
        let capacity = rec.cells.capacity();
        let mut rec: Record<'static> = rec.emptied();
        assert!(rec.cells.is_empty());
        assert_eq!(rec.cells.capacity(), capacity);
        rec.fill(&fields);
        assert_eq!(rec.cells, vec![Cell::Missing; 2]);
    }

    #[test]
    fn keys_in_a_new_order_still_find_their_fields() {
        let mut fields = Fields::new(false);
        let a = fields.register("a");
        let b = fields.register("b");
        for line in [
            r#"{"a":1,"b":2,"z":0}"#,
            r#"{"a":3,"b":4,"z":0}"#,
            r#"{"b":6,"a":5}"#,
            r#"{"z":0,"a":7,"b":8,"c":9}"#,
        ] {
            let mut rec = Record::new(&fields);
            rec.read_json(line, &mut fields).unwrap();
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(rec.get(a), &Cell::Long(v["a"].as_i64().unwrap()), "{line}");
            assert_eq!(rec.get(b), &Cell::Long(v["b"].as_i64().unwrap()), "{line}");
        }
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn open_fields_register_what_they_meet() {
        let mut fields = Fields::new(true);
        let mut rec = Record::new(&fields);
        rec.read_json(r#"{"a":1.5,"b":true,"c":{"x":1}}"#, &mut fields)
            .unwrap();
        assert_eq!(fields.names(), ["a", "b", "c"]);
        assert_eq!(rec.get(0), &Cell::Double(1.5));
        assert_eq!(rec.get(2).text().unwrap(), r#"{"x":1}"#);
    }

    #[test]
    fn bad_lines_say_why() {
        let mut fields = Fields::new(true);
        let mut rec = Record::new(&fields);
        assert_eq!(
            rec.read_json("[1,2]", &mut fields).unwrap_err().0,
            "the line is JSON but not an object"
        );
        assert!(rec
            .read_json("{oops", &mut fields)
            .unwrap_err()
            .0
            .starts_with("invalid JSON"));
        assert!(rec.read_json(r#"{"a":1} x"#, &mut fields).is_err());
    }

    #[test]
    fn numbers_and_text() {
        assert_eq!(Cell::Str(" 42 ".into()).as_i64(), Some(42));
        assert_eq!(Cell::Str("4.5".into()).as_f64(), Some(4.5));
        assert_eq!(Cell::Double(1.0).text().unwrap(), "1.0");
        assert_eq!(Cell::Long(i64::MAX).as_i64(), Some(i64::MAX));
        assert!(Cell::Missing.is_null() && Cell::Null.text().is_none());
    }
}
