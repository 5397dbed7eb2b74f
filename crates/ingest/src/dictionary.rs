//! Per-dimension dictionaries: each distinct value is stored once and rows hold its `u32` id (0
//! is null). Rows in memory and in spill files are then a few bytes per dimension, grouping
//! compares integers, and a value read from an input line is looked up without being copied
//! unless it is new.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::bytes::same_bytes;
use crate::hash_index::{spread, Entry};

/// A dimension value as stored in a segment.
#[derive(Debug, Clone, PartialEq)]
pub enum DimValue {
    Null,
    String(Box<str>),
    Multi(Box<[Box<str>]>),
    Long(i64),
    Double(f64),
}

/// A value to look up, borrowed from the record being read.
#[derive(Debug, Clone, Copy)]
pub enum Probe<'x> {
    Null,
    Str(&'x str),
    Multi(&'x [Cow<'x, str>]),
    Long(i64),
    Double(f64),
}

/// The id of null in every dictionary.
pub const NULL_ID: u32 = 0;

impl DimValue {
    #[inline]
    fn matches(&self, p: &Probe) -> bool {
        match (self, p) {
            (DimValue::Null, Probe::Null) => true,
            (DimValue::String(a), Probe::Str(b)) => same_bytes(a.as_bytes(), b.as_bytes()),
            (DimValue::Multi(a), Probe::Multi(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| **x == **y)
            }
            (DimValue::Long(a), Probe::Long(b)) => a == b,
            (DimValue::Double(a), Probe::Double(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }

    /// Segment order: null first, numbers by value, strings (and lists, element by element)
    /// lexicographically.
    pub fn order(&self, other: &DimValue) -> Ordering {
        use DimValue::*;
        let rank = |v: &DimValue| match v {
            Null => 0,
            Long(_) | Double(_) => 1,
            String(_) | Multi(_) => 2,
        };
        match (self, other) {
            (Long(a), Long(b)) => a.cmp(b),
            (Long(a), Double(b)) => (*a as f64).total_cmp(b),
            (Double(a), Long(b)) => a.total_cmp(&(*b as f64)),
            (Double(a), Double(b)) => a.total_cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (String(a), Multi(b)) => std::slice::from_ref(a).iter().cmp(b.iter()),
            (Multi(a), String(b)) => a.iter().cmp(std::slice::from_ref(b).iter()),
            (Multi(a), Multi(b)) => a.iter().cmp(b.iter()),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

/// A probe's hash (a stored value's entry keeps half the hash of the probe that added it).
fn hash_probe(hasher: &DefaultHashBuilder, p: &Probe) -> u64 {
    // No tag for the kind of value: a column's values are nearly always of one kind, and two of
    // different kinds with one hash are told apart by the comparison that follows.
    let mut h = hasher.build_hasher();
    match p {
        Probe::Null => {}
        Probe::Str(s) => h.write(s.as_bytes()),
        Probe::Multi(items) => {
            items.len().hash(&mut h);
            items.iter().for_each(|s| (**s).hash(&mut h));
        }
        Probe::Long(l) => h.write_i64(*l),
        Probe::Double(d) => h.write_u64(d.to_bits()),
    }
    h.finish()
}

pub struct Dictionary {
    values: Vec<DimValue>,
    table: HashTable<Entry>,
    hasher: DefaultHashBuilder,
    multi: bool,
    /// Values looked up so far.
    lookups: u64,
    /// Whether equal values must share an id (rollup groups rows by ids). When they need not,
    /// a dictionary of mostly unique values (a comment, an id) stops looking values up: see
    /// [`Dictionary::intern`].
    must_share: bool,
    /// Set once lookups stopped: every value then gets an id of its own.
    appending: bool,
}

/// How many values a dictionary holds before it may stop looking values up.
const APPEND_AFTER: usize = 1 << 16;

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary {
            values: vec![DimValue::Null],
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            multi: false,
            lookups: 0,
            must_share: true,
            appending: false,
        }
    }
}

impl Dictionary {
    /// A dictionary for rows that are not rolled up, where ids need not be shared: nothing
    /// compares rows by ids for equality, only orders them (by value, for large dictionaries).
    pub fn unshared() -> Self {
        Dictionary {
            must_share: false,
            ..Dictionary::default()
        }
    }

    /// The id of `p`, added if new. An unshared dictionary that holds more than 65,536 values,
    /// three quarters of all it was asked for, stops looking up: the lookup of a value that is
    /// nearly always new misses the processor's caches twice (table, then value) and finds
    /// nothing, so every value is appended with an id of its own instead.
    pub fn intern(&mut self, p: Probe) -> u32 {
        if matches!(p, Probe::Null) {
            return NULL_ID;
        }
        if self.appending {
            return self.append(p);
        }
        self.lookups += 1;
        if !self.must_share
            && self.values.len() > APPEND_AFTER
            && self.values.len() as u64 * 4 > self.lookups * 3
        {
            self.appending = true;
            self.table = HashTable::new();
            return self.append(p);
        }
        let hash = hash_probe(&self.hasher, &p) as u32;
        let values = &self.values;
        let found = self.table.find(spread(hash), |e| {
            e.hash == hash && values[e.id as usize].matches(&p)
        });
        if let Some(e) = found {
            return e.id;
        }
        let id = self.append(p);
        self.table
            .insert_unique(spread(hash), Entry { hash, id }, Entry::table_hash);
        id
    }

    /// Stores `p` under a new id.
    fn append(&mut self, p: Probe) -> u32 {
        let value = match p {
            Probe::Null => DimValue::Null,
            Probe::Str(s) => DimValue::String(s.into()),
            Probe::Multi(items) => {
                self.multi = true;
                DimValue::Multi(items.iter().map(|s| Box::from(&**s)).collect())
            }
            Probe::Long(l) => DimValue::Long(l),
            Probe::Double(d) => DimValue::Double(d),
        };
        self.values.push(value);
        (self.values.len() - 1) as u32
    }

    pub fn get(&self, id: u32) -> &DimValue {
        &self.values[id as usize]
    }

    /// Whether the values were found to be nearly all distinct (lookups stopped).
    pub fn mostly_unique(&self) -> bool {
        self.appending
    }

    /// Whether any row had a list of values here (the column is then a list column).
    pub fn has_multi(&self) -> bool {
        self.multi
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.len() == 1
    }

    /// Each id's position in value order (null is 0; ids of equal values, which an unshared
    /// dictionary may hold, share a rank). Values added later do not change the relative order
    /// of earlier ones, so rows sorted by one ranking stay sorted by a later one.
    pub fn ranks(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.values.len() as u32).collect();
        ids.sort_unstable_by(|a, b| self.get(*a).order(self.get(*b)));
        let mut ranks = vec![0; ids.len()];
        let mut rank = 0;
        for (i, id) in ids.iter().enumerate() {
            if i > 0 && self.get(ids[i - 1]).order(self.get(*id)).is_ne() {
                rank += 1;
            }
            ranks[*id as usize] = rank;
        }
        ranks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_each_value_once() {
        let mut d = Dictionary::default();
        let a = d.intern(Probe::Str("a"));
        let b = d.intern(Probe::Str("b"));
        assert_eq!(d.intern(Probe::Str(&String::from("a"))), a);
        assert_ne!(a, b);
        assert_eq!(d.intern(Probe::Null), NULL_ID);
        let l = d.intern(Probe::Long(7));
        assert_eq!(d.intern(Probe::Long(7)), l);
        let m = d.intern(Probe::Multi(&[Cow::Borrowed("x"), Cow::Borrowed("y")]));
        assert_eq!(
            d.intern(Probe::Multi(&[Cow::Owned("x".into()), Cow::Borrowed("y")])),
            m
        );
        assert!(d.has_multi());
        assert_eq!(d.len(), 5);
        assert_eq!(d.get(a), &DimValue::String("a".into()));
    }

    #[test]
    fn unshared_dictionaries_of_unique_values_stop_looking_up() {
        let mut d = Dictionary::unshared();
        let n = APPEND_AFTER + 10;
        let ids: Vec<u32> = (0..n)
            .map(|i| d.intern(Probe::Str(&format!("v{i}"))))
            .collect();
        assert!(d.appending);
        let again = d.intern(Probe::Str("v1"));
        assert_ne!(again, ids[1], "appended, not looked up");
        assert_eq!(d.get(again), d.get(ids[1]));
        let mut shared = Dictionary::default();
        (0..n).for_each(|i| {
            shared.intern(Probe::Str(&format!("v{i}")));
        });
        assert!(!shared.appending, "rollup needs one id per value");
        assert_eq!(shared.intern(Probe::Str("v1")), 2);
    }

    #[test]
    fn equal_values_share_a_rank() {
        let mut d = Dictionary::unshared();
        let a = d.intern(Probe::Str("a"));
        let b = d.append(Probe::Str("b"));
        let a2 = d.append(Probe::Str("a"));
        let r = d.ranks();
        assert_eq!(r[a as usize], r[a2 as usize]);
        assert_eq!(r[b as usize], r[a as usize] + 1);
    }

    #[test]
    fn ranks_follow_value_order() {
        let mut d = Dictionary::default();
        let z = d.intern(Probe::Str("z"));
        let a = d.intern(Probe::Str("a"));
        let m = d.intern(Probe::Str("m"));
        let r = d.ranks();
        assert_eq!(r[NULL_ID as usize], 0);
        assert!(r[a as usize] < r[m as usize] && r[m as usize] < r[z as usize]);
        let mut n = Dictionary::default();
        let big = n.intern(Probe::Long(10));
        let small = n.intern(Probe::Long(-3));
        let r = n.ranks();
        assert!(r[small as usize] < r[big as usize]);
    }
}
