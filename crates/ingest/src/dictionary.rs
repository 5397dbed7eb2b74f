//! Per-dimension dictionaries: each distinct value is stored once and rows hold its `u32` id (0
//! is null). Rows in memory and in spill files are then a few bytes per dimension, grouping
//! compares integers, and a value read from an input line is looked up without being copied
//! unless it is new.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

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
    fn probe(&self) -> ProbeOwned<'_> {
        match self {
            DimValue::Null => ProbeOwned::Null,
            DimValue::String(s) => ProbeOwned::Str(s),
            DimValue::Multi(items) => ProbeOwned::Multi(items),
            DimValue::Long(l) => ProbeOwned::Long(*l),
            DimValue::Double(d) => ProbeOwned::Double(*d),
        }
    }

    fn matches(&self, p: &Probe) -> bool {
        match (self, p) {
            (DimValue::Null, Probe::Null) => true,
            (DimValue::String(a), Probe::Str(b)) => &**a == *b,
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

/// What is hashed: the same for a stored value and a probe of it.
enum ProbeOwned<'x> {
    Null,
    Str(&'x str),
    Multi(&'x [Box<str>]),
    Long(i64),
    Double(f64),
}

fn hash_with(hasher: &DefaultHashBuilder, p: ProbeOwned) -> u64 {
    let mut h = hasher.build_hasher();
    match p {
        ProbeOwned::Null => 0u8.hash(&mut h),
        ProbeOwned::Str(s) => {
            1u8.hash(&mut h);
            s.hash(&mut h);
        }
        ProbeOwned::Multi(items) => hash_list(&mut h, items.iter().map(|s| &**s)),
        ProbeOwned::Long(l) => {
            3u8.hash(&mut h);
            l.hash(&mut h);
        }
        ProbeOwned::Double(d) => {
            4u8.hash(&mut h);
            d.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

/// A list of values, hashed the same whichever slice holds them.
fn hash_list<'s>(h: &mut impl Hasher, items: impl ExactSizeIterator<Item = &'s str>) {
    2u8.hash(h);
    items.len().hash(h);
    items.for_each(|s| s.hash(h));
}

fn hash_probe(hasher: &DefaultHashBuilder, p: &Probe) -> u64 {
    match p {
        Probe::Null => hash_with(hasher, ProbeOwned::Null),
        Probe::Str(s) => hash_with(hasher, ProbeOwned::Str(s)),
        Probe::Long(l) => hash_with(hasher, ProbeOwned::Long(*l)),
        Probe::Double(d) => hash_with(hasher, ProbeOwned::Double(*d)),
        Probe::Multi(items) => {
            let mut h = hasher.build_hasher();
            hash_list(&mut h, items.iter().map(|s| &**s));
            h.finish()
        }
    }
}

pub struct Dictionary {
    values: Vec<DimValue>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    multi: bool,
}

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary {
            values: vec![DimValue::Null],
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            multi: false,
        }
    }
}

impl Dictionary {
    /// The id of `p`, added if new.
    pub fn intern(&mut self, p: Probe) -> u32 {
        if matches!(p, Probe::Null) {
            return NULL_ID;
        }
        let Dictionary {
            values,
            table,
            hasher,
            multi,
        } = self;
        let hash = hash_probe(hasher, &p);
        if let Some(id) = table.find(hash, |&id| values[id as usize].matches(&p)) {
            return *id;
        }
        let value = match p {
            Probe::Null => DimValue::Null,
            Probe::Str(s) => DimValue::String(s.into()),
            Probe::Multi(items) => {
                *multi = true;
                DimValue::Multi(items.iter().map(|s| Box::from(&**s)).collect())
            }
            Probe::Long(l) => DimValue::Long(l),
            Probe::Double(d) => DimValue::Double(d),
        };
        let id = values.len() as u32;
        values.push(value);
        table.insert_unique(hash, id, |&id| {
            hash_with(hasher, values[id as usize].probe())
        });
        id
    }

    pub fn get(&self, id: u32) -> &DimValue {
        &self.values[id as usize]
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

    /// Each id's position in value order (null is 0). Values added later do not change the
    /// relative order of earlier ones, so rows sorted by one ranking stay sorted by a later one.
    pub fn ranks(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.values.len() as u32).collect();
        ids.sort_unstable_by(|a, b| self.get(*a).order(self.get(*b)));
        let mut ranks = vec![0; ids.len()];
        for (rank, id) in ids.into_iter().enumerate() {
            ranks[id as usize] = rank as u32;
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
