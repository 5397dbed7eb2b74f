//! Typed identifiers. A task id becomes a file name on the middle manager and a znode name in
//! ZooKeeper, so it is validated the way Druid's `IdUtils.validateId` does before it goes anywhere.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest id accepted: `druid_tasks.id` is a `VARCHAR(255)`.
pub const MAX_ID_LENGTH: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} [{id}] must not start with '.'")]
    LeadingDot { what: &'static str, id: String },
    #[error("{what} [{id}] must not contain '/'")]
    Slash { what: &'static str, id: String },
    #[error("{what} [{id}] must not contain whitespace other than space, or control characters (found U+{code:04X})")]
    BadCharacter {
        what: &'static str,
        id: String,
        code: u32,
    },
    #[error("{what} must be at most {MAX_ID_LENGTH} bytes long, got {len}")]
    TooLong { what: &'static str, len: usize },
}

/// Checks an identifier the way Druid's `IdUtils.validateId` does, plus a length limit.
pub fn validate_id(what: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { what });
    }
    if id.len() > MAX_ID_LENGTH {
        return Err(IdError::TooLong {
            what,
            len: id.len(),
        });
    }
    // The id may be printed in the error, so keep it readable and bounded.
    let shown = || id.escape_debug().to_string();
    if id.starts_with('.') {
        return Err(IdError::LeadingDot { what, id: shown() });
    }
    if id.contains('/') {
        return Err(IdError::Slash { what, id: shown() });
    }
    for c in id.chars() {
        let code = c as u32;
        let bad = (c.is_whitespace() && c != ' ')
            || code <= 31
            || (127..=159).contains(&code)
            || (0xD800..=0xF8FF).contains(&code)
            || (0xFFF0..=0xFFFF).contains(&code);
        if bad {
            return Err(IdError::BadCharacter {
                what,
                id: shown(),
                code,
            });
        }
    }
    Ok(())
}

/// A validated task id: safe as a file name and a znode name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        validate_id("task id", &id)?;
        Ok(TaskId(id))
    }

    /// Druid's `IdUtils.newTaskId(type, dataSource, null)`: `type_dataSource_<8 random a-p>_<now>`.
    pub fn generate(task_type: &str, data_source: &str) -> Self {
        let mut rng = rand::rng();
        let suffix: String = (0..8)
            .map(|_| (b'a' + rng.random_range(0..16u8)) as char)
            .collect();
        let id = format!(
            "{task_type}_{data_source}_{suffix}_{}",
            crate::time::now_iso()
        );
        // A data source name that is not a valid id part still gives a valid id once stripped
        // of the bad characters; Druid would reject such a data source anyway.
        TaskId(
            id.chars()
                .map(|c| if c == '/' || c.is_control() { '_' } else { c })
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaskId::new(s).map_err(serde::de::Error::custom)
    }
}

/// A middle manager's identity, `host:port`, as announced in ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerHost(String);

impl WorkerHost {
    pub fn new(host: impl Into<String>) -> Result<Self, IdError> {
        let host = host.into();
        validate_id("worker host", &host)?;
        Ok(WorkerHost(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name users choose that Drover puts into paths, znodes and SQL: validated like a task id,
/// and otherwise used as the text it is.
macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
                let name = name.into();
                validate_id($what, &name)?;
                Ok($name(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $name::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_name!(
    /// A data source name (`dataSource`): a directory in deep storage and a key in every table.
    DataSource,
    "dataSource"
);

validated_name!(
    /// A supervisor's id: the data source's name unless the spec says otherwise.
    SupervisorId,
    "supervisor id"
);

/// A Kafka supervisor's task group (`taskGroupId`): the tasks reading the same partitions from
/// the same offsets, replicas of one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskGroupId(pub u32);

impl fmt::Display for TaskGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_druid_style_ids() {
        for id in [
            "noop_test_1",
            "index_kafka_ds_0e905aa31037879_nommnaeg",
            "a b",
            "x..y",
        ] {
            TaskId::new(id).unwrap();
        }
    }

    #[test]
    fn rejects_unsafe_ids() {
        assert!(matches!(TaskId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(TaskId::new(".."), Err(IdError::LeadingDot { .. })));
        assert!(matches!(
            TaskId::new(".hidden"),
            Err(IdError::LeadingDot { .. })
        ));
        assert!(matches!(TaskId::new("a/b"), Err(IdError::Slash { .. })));
        assert!(matches!(
            TaskId::new("../etc"),
            Err(IdError::LeadingDot { .. })
        ));
        assert!(matches!(
            TaskId::new("a\tb"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            TaskId::new("a\nb"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            TaskId::new("a\u{7f}b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            TaskId::new("a\u{85}b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            TaskId::new("a\u{e000}b"),
            Err(IdError::BadCharacter { .. })
        ));
        assert!(matches!(
            TaskId::new("x".repeat(256)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn names_are_validated_and_compare_as_text() {
        let ds = DataSource::new("wikipedia").unwrap();
        assert_eq!(ds, "wikipedia");
        assert_eq!(ds.len(), 9);
        assert!(matches!(
            DataSource::new("../x"),
            Err(IdError::LeadingDot {
                what: "dataSource",
                ..
            })
        ));
        let parsed: Result<SupervisorId, _> = serde_json::from_str("\"a/b\"");
        assert!(parsed
            .unwrap_err()
            .to_string()
            .contains("supervisor id [a/b]"));
        assert_eq!(serde_json::to_string(&TaskGroupId(3)).unwrap(), "3");
    }

    #[test]
    fn generated_ids_are_valid_and_druid_shaped() {
        let id = TaskId::generate("noop", "none");
        TaskId::new(id.as_str()).unwrap();
        let parts: Vec<&str> = id.as_str().splitn(4, '_').collect();
        assert_eq!(parts[0], "noop");
        assert_eq!(parts[1], "none");
        assert_eq!(parts[2].len(), 8);
        assert!(parts[2].chars().all(|c| ('a'..='p').contains(&c)));
        assert!(parts[3].ends_with('Z'));
    }
}
