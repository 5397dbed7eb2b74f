//! The sequences of an `index_kafka` task (see docs/architecture.md): contiguous offset ranges, each
//! published as one transaction with its start and end offsets. Sequence 0 starts at the task's
//! start offsets; the supervisor closes the last one with `POST /offsets/end` — `finish=false`
//! opens the next one there (a checkpoint), `finish=true` makes it the last. Kept on disk so a
//! restarted task reads again from the start of its first unpublished sequence, consistently with
//! what the supervisor told it. Pure state; the reader owns it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::failure::TaskFailure;
use drover_kafka::task::END_OF_STREAM;
use drover_kafka::Offsets;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    pub id: u32,
    pub start: Offsets,
    /// Exclusive; `END_OF_STREAM` until the supervisor sets it.
    pub end: Offsets,
    pub published: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequences {
    list: Vec<Sequence>,
    /// The last sequence's end offsets were set with `finish=true`: nothing comes after it.
    finished: bool,
}

impl Sequences {
    /// From the task's `checkpoints` (sequence id → start) and end offsets: each sequence ends
    /// where the next starts; the last ends at the task's end offsets.
    pub fn new(checkpoints: &BTreeMap<u32, Offsets>, end: &Offsets) -> Sequences {
        let ids: Vec<(&u32, &Offsets)> = checkpoints.iter().collect();
        let list = ids
            .iter()
            .enumerate()
            .map(|(i, (id, start))| Sequence {
                id: **id,
                start: (*start).clone(),
                end: ids
                    .get(i + 1)
                    .map_or_else(|| end.clone(), |(_, next)| (*next).clone()),
                published: false,
            })
            .collect();
        let finished = end.values().all(|o| *o != END_OF_STREAM);
        Sequences { list, finished }
    }

    pub fn load(path: &Path) -> Result<Option<Sequences>, TaskFailure> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| fail!("{} is unreadable: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail!("cannot read {}: {e}", path.display())),
        }
    }

    /// Written to a temporary file and renamed, so a crash leaves the old or the new state.
    pub fn save(&self, path: &Path) -> Result<(), TaskFailure> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).expect("plain data"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| fail!("cannot write {}: {e}", path.display()))
    }

    pub fn all(&self) -> &[Sequence] {
        &self.list
    }

    pub fn last(&self) -> &Sequence {
        self.list.last().expect("a task has at least one sequence")
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Where reading starts: the start of the first unpublished sequence, for every partition.
    pub fn read_from(&self) -> Offsets {
        self.list
            .iter()
            .find(|s| !s.published)
            .map_or_else(|| self.last().end.clone(), |s| s.start.clone())
    }

    /// Index of the sequence a message at `offset` of `partition` belongs to, `None` past the
    /// end of the last one.
    pub fn route(&self, partition: i32, offset: i64) -> Option<usize> {
        self.list
            .iter()
            .position(|s| !s.published && s.end.get(&partition).is_some_and(|end| offset < *end))
    }

    /// Unpublished sequences (not the open last one) whose every partition has been read up to
    /// their end, in order.
    pub fn ready_to_publish(&self, current: &Offsets) -> Vec<usize> {
        let open_last = !self.finished;
        self.list
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                !(s.published || open_last && *i + 1 == self.list.len()) && reached(current, &s.end)
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub fn mark_published(&mut self, index: usize) {
        self.list[index].published = true;
    }

    /// `POST /offsets/end`: ends the last sequence at `end`; `finish` makes it the last one, else
    /// a new sequence starts there. Druid's checks, in its words where it has them.
    pub fn set_end_offsets(
        &mut self,
        end: &Offsets,
        finish: bool,
        current: &Offsets,
    ) -> Result<SetEnd, TaskFailure> {
        let last = self.last().clone();
        if end.is_empty() {
            return Err("Request body is empty: no end offsets given".into());
        }
        if let Some(p) = end.keys().find(|p| !last.start.contains_key(p)) {
            return Err(fail!(
                "Request contains partitions not being handled by this task, your partitions: {:?}, \
                 my partitions: {:?} (partition {p})",
                end.keys().collect::<Vec<_>>(),
                last.start.keys().collect::<Vec<_>>()
            ));
        }
        // The same request again (a retried checkpoint or finish): nothing to do.
        if let Some(previous) = self
            .list
            .iter()
            .rev()
            .nth(if self.finished { 0 } else { 1 })
        {
            if previous.end == merged(&previous.start, end) && (self.finished == finish) {
                return Ok(SetEnd::Duplicate);
            }
        }
        if self.finished {
            return Err("the task's end offsets are already final".into());
        }
        for (p, o) in end {
            let floor = current
                .get(p)
                .copied()
                .unwrap_or(last.start[p])
                .max(last.start[p]);
            if *o < floor {
                return Err(fail!(
                    "End offset {o} of partition {p} is before this task's current offset {floor}"
                ));
            }
        }
        let end = merged(&last.start, end);
        let index = self.list.len() - 1;
        self.list[index].end = end.clone();
        if finish {
            self.finished = true;
        } else {
            self.list.push(Sequence {
                id: last.id + 1,
                start: end.clone(),
                end: end.keys().map(|p| (*p, END_OF_STREAM)).collect(),
                published: false,
            });
        }
        Ok(SetEnd::Set(end))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum SetEnd {
    Set(Offsets),
    Duplicate,
}

/// `end` for the partitions it names, `base`'s offsets for the others (a partition the request
/// leaves out keeps reading to where it started: it gets no more data in this sequence).
fn merged(base: &Offsets, end: &Offsets) -> Offsets {
    base.iter()
        .map(|(p, o)| (*p, end.get(p).copied().unwrap_or(*o)))
        .collect()
}

fn reached(current: &Offsets, end: &Offsets) -> bool {
    end.iter()
        .all(|(p, e)| *e != END_OF_STREAM && current.get(p).is_some_and(|c| c >= e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pairs: &[(i32, i64)]) -> Offsets {
        pairs.iter().copied().collect()
    }

    fn fresh() -> Sequences {
        Sequences::new(
            &[(0, o(&[(0, 10), (1, 20)]))].into(),
            &o(&[(0, END_OF_STREAM), (1, END_OF_STREAM)]),
        )
    }

    #[test]
    fn checkpoint_then_finish() {
        let mut s = fresh();
        assert_eq!(s.route(0, 15), Some(0));
        assert!(s.ready_to_publish(&o(&[(0, 1000), (1, 1000)])).is_empty());
        let current = o(&[(0, 15), (1, 25)]);
        assert!(
            s.ready_to_publish(&current).is_empty(),
            "the open sequence never publishes"
        );
        let set = s
            .set_end_offsets(&o(&[(0, 17), (1, 25)]), false, &current)
            .unwrap();
        assert_eq!(set, SetEnd::Set(o(&[(0, 17), (1, 25)])));
        assert_eq!(s.all().len(), 2);
        assert_eq!(s.all()[1].start, o(&[(0, 17), (1, 25)]));
        // A replica behind the max keeps routing into sequence 0 until its end.
        assert_eq!(s.route(0, 16), Some(0));
        assert_eq!(s.route(0, 17), Some(1));
        assert!(s.ready_to_publish(&current).is_empty());
        assert_eq!(s.ready_to_publish(&o(&[(0, 17), (1, 25)])), vec![0]);
        // A retried checkpoint is a no-op.
        assert_eq!(
            s.set_end_offsets(&o(&[(0, 17), (1, 25)]), false, &current)
                .unwrap(),
            SetEnd::Duplicate
        );
        s.mark_published(0);
        assert_eq!(s.read_from(), o(&[(0, 17), (1, 25)]));
        s.set_end_offsets(&o(&[(0, 30), (1, 31)]), true, &o(&[(0, 20), (1, 31)]))
            .unwrap();
        assert!(s.is_finished());
        assert_eq!(s.route(0, 30), None);
        assert!(s.ready_to_publish(&o(&[(0, 29), (1, 31)])).is_empty());
        assert_eq!(s.ready_to_publish(&o(&[(0, 30), (1, 31)])), vec![1]);
        assert!(s.set_end_offsets(&o(&[(0, 40)]), true, &o(&[])).is_err());
    }

    #[test]
    fn refuses_what_druid_refuses() {
        let mut s = fresh();
        let current = o(&[(0, 15), (1, 25)]);
        assert!(s.set_end_offsets(&o(&[]), true, &current).is_err());
        let e = s
            .set_end_offsets(&o(&[(7, 1)]), true, &current)
            .unwrap_err();
        assert!(e.0.contains("not being handled"), "{e}");
        let e = s
            .set_end_offsets(&o(&[(0, 12)]), true, &current)
            .unwrap_err();
        assert!(e.0.contains("before"), "{e}");
        assert_eq!(s, fresh(), "a refused request changes nothing");
    }

    #[test]
    fn restored_from_disk_reads_from_the_first_unpublished_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sequences.json");
        assert_eq!(Sequences::load(&path).unwrap(), None);
        let mut s = fresh();
        s.set_end_offsets(&o(&[(0, 17), (1, 25)]), false, &o(&[]))
            .unwrap();
        s.mark_published(0);
        s.save(&path).unwrap();
        let back = Sequences::load(&path).unwrap().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.read_from(), o(&[(0, 17), (1, 25)]));
    }

    #[test]
    fn checkpoints_from_the_context_make_contiguous_sequences() {
        let s = Sequences::new(
            &[(0, o(&[(0, 1)])), (1, o(&[(0, 5)]))].into(),
            &o(&[(0, 9)]),
        );
        assert_eq!(s.all()[0].end, o(&[(0, 5)]));
        assert_eq!(s.all()[1].end, o(&[(0, 9)]));
        assert!(s.is_finished());
    }
}
